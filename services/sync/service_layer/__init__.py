"""Use cases of the sync service: connections, jobs, their runs and schedule."""
