"""Prometheus metrics of the sync service (beside the per-call ones of the shared runtime)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RUNS_FINISHED = Counter(
    "steward_sync_runs_finished_total",
    "Runs of jobs (connector jobs and uploads) finished on this replica, by job type, connector and final state.",
    ["type", "connector", "state"],
)
ROWS = Counter(
    "steward_sync_rows_total",
    "Rows of finished runs, by result (assigned, updated, unchanged, skipped, removed).",
    ["result"],
)
LAST_SUCCESS = Gauge(
    "steward_sync_last_success_timestamp_seconds",
    "When the last successful run of a job finished on this replica (take the max over replicas).",
    # The job's display name; not "job", which Prometheus itself sets on every series.
    ["sync_job"],
)
