"""Plays on durable-rules: compilation of criteria, and evaluation of events (see
docs/rules-engine-notes.md for the engine behaviour this is built around)."""
