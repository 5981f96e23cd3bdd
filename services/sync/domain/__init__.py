"""The sync domain: integration jobs and their states. No gRPC, no SQL."""
