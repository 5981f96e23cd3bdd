"""Prometheus metrics of the rules service (beside the per-call ones of the shared runtime)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter("steward_rules_events_total", "Account events received, by result (recorded, duplicate).", ["result"])
RUNS_CREATED = Counter("steward_rules_runs_created_total", "Play runs created: (event, play) matches.")
RUNS_FINISHED = Counter(
    "steward_rules_runs_finished_total", "Play runs finished, by outcome (APPLIED, SKIPPED, FAILED).", ["outcome"]
)
RUN_WAITS = Counter(
    "steward_rules_run_waits_total", "Times a run was put back to wait because the users service was unreachable."
)
RUN_LAG = Histogram(
    "steward_rules_run_lag_seconds",
    "From an event being recorded to its run finishing.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0),
)
USERS_EVENTS_CONSUMED = Counter(
    "steward_rules_users_events_consumed_total",
    "Events of the users service's stream handled (and their cursor saved) by this replica.",
)
WEBHOOKS = Counter(
    "steward_rules_webhooks_total",
    "call_webhook deliveries, by result (accepted, failed after retries or refused).",
    ["result"],
)
SEGMENT_FLIPS = Counter(
    "steward_rules_segment_flips_total", "Accounts entering or leaving segment plays' segments.", ["direction"]
)
TIME_PASS_SECONDS = Histogram(
    "steward_rules_time_pass_seconds",
    "One pass of the clock over the accounts due a check for time-based segment plays.",
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
TIME_PASS_ACCOUNTS = Counter(
    "steward_rules_time_pass_accounts_total",
    "Accounts the clock re-evaluated because a relative date reached a time-based play's window.",
)
MANUAL_RUNS = Counter(
    "steward_rules_manual_runs_total", "RunPlay calls, by result (started, repeated, limited).", ["result"]
)
