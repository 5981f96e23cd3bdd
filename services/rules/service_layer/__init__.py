"""Use cases of the rules service: plays, event ingestion, run execution, the users stream."""
