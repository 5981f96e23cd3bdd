"""The users domain: entities, rules and errors. No gRPC, no SQL."""
