"""The end of every run (connector or upload): one transaction records it, releases the job's
lease and, for a successful connector run, moves the watermark; then the metrics."""

from __future__ import annotations

from services.runtime.db import Database
from services.sync import metrics
from services.sync.domain.runs import Run, RunCounts, RunState
from services.sync.unit_of_work import SyncUnitOfWork
from steward.users.v1 import assignments_pb2

OUTCOME = assignments_pb2.AssignmentRowOutcome


def count_outcome(counts: RunCounts, outcome: assignments_pb2.AssignmentRowOutcome) -> bool:
    """Count one BatchSetAssignments row outcome; False for a failed row (the caller records why)."""
    if outcome.result == OUTCOME.RESULT_FAILED:
        return False
    if outcome.result == OUTCOME.RESULT_UNCHANGED:
        counts.unchanged += 1
    elif outcome.result == OUTCOME.RESULT_CLEARED:
        counts.removed += 1
    elif outcome.previous_user:
        counts.updated += 1
    else:
        counts.assigned += 1
    return True


def finish_run(db: Database, run: Run, *, moves_watermark: bool) -> None:
    job_type, connector, label = "unknown", "", run.job_id
    with SyncUnitOfWork(db) as uow:
        uow.runs.put(run)
        job = uow.jobs.get(run.job_id)
        if job is not None:
            job_type, connector, label = job.type.value, job.connector, job.display_name
            if moves_watermark and run.state is RunState.SUCCEEDED:
                job.watermark = run.watermark_after
            job.last_run_id, job.last_run_time = run.id, run.start_time
            uow.jobs.put(job)
            uow.jobs.release_lease(run.job_id, run.id)
        uow.commit()
    metrics.RUNS_FINISHED.labels(job_type, connector, run.state.value).inc()
    counts = run.counts
    for result, value in (
        ("assigned", counts.assigned),
        ("updated", counts.updated),
        ("unchanged", counts.unchanged),
        ("skipped", counts.skipped),
        ("removed", counts.removed),
    ):
        metrics.ROWS.labels(result).inc(value)
    if run.state is RunState.SUCCEEDED and run.end_time is not None:
        metrics.LAST_SUCCESS.labels(label).set(run.end_time.timestamp())
