"""One blueprint per area of the console."""
