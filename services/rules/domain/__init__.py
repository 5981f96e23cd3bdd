"""The rules domain: plays, triggers and their states. No gRPC, no SQL."""
