"""An inbound integration job: one that reads through a connector (connectors/), or a file upload.

DRAFT    saved (always valid); runs only when asked
ACTIVE   also runs every run_interval (incremental once a full run has succeeded)
PAUSED   runs only when asked
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from services.runtime.errors import FailedPrecondition, NotFound, Violations
from services.runtime.etag import make_etag


class JobType(StrEnum):
    CONNECTOR = "CONNECTOR"  # reads from a connection through `connector`
    FILE_UPLOAD = "FILE_UPLOAD"


class Removals(StrEnum):
    """What happens to assignments the job wrote earlier that its source no longer returns."""

    REPORT = "REPORT"  # counted by a full run; nothing changes (the product's behaviour)
    MIRROR = "MIRROR"  # cleared after a successful full run, unless another writer changed them


class JobState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"


@dataclass
class Job:
    id: str
    display_name: str
    type: JobType
    state: JobState
    connection_id: str | None
    schedule: str
    create_time: dt.datetime
    update_time: dt.datetime
    last_run_time: dt.datetime | None = None
    version: int = 1
    # Connector jobs: the connector's kind (registry.py) and its settings, as the connector
    # stores them (settings_to_json); the connector alone reads them.
    connector: str = ""
    settings: dict[str, Any] | None = None
    run_interval: dt.timedelta | None = None
    watermark: dt.datetime | None = None
    last_run_id: str = ""

    @property
    def name(self) -> str:
        return f"jobs/{self.id}"

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)


def reads_connection(job: Job) -> tuple[str, dict[str, Any], str]:
    """(connector, settings, connection id) of a job that reads through a connector; a job of
    another kind (a file upload job) has nothing to preview, validate or read:
    FAILED_PRECONDITION naming its type."""
    if job.type is not JobType.CONNECTOR or job.settings is None or not job.connection_id:
        raise FailedPrecondition(
            "JOB_READS_NO_CONNECTION",
            f"{job.name} is a {job.type.value} job: it reads from no connection",
            metadata={"job": job.name, "type": job.type.value},
        )
    return job.connector, job.settings, job.connection_id


def job_not_found(job_id: str) -> NotFound:
    return NotFound("JOB_NOT_FOUND", f"no job jobs/{job_id}", metadata={"job": f"jobs/{job_id}"})


MIN_RUN_INTERVAL = dt.timedelta(minutes=5)


def check_job(job: Job, path: str = "job") -> Violations:
    """What the job itself must be; its connector's settings are the connector's to check."""
    problems = Violations()
    if not job.display_name.strip() or len(job.display_name) > 200:
        problems.add(f"{path}.display_name", "1 to 200 characters", "DISPLAY_NAME_INVALID")
    if job.type is JobType.CONNECTOR and not job.connection_id:
        problems.add(f"{path}.connection", "a connector job reads from a connection", "REQUIRED")
    if job.run_interval is not None and job.type is not JobType.CONNECTOR:
        problems.add(
            f"{path}.run_interval", "only jobs that read from a connection run on a schedule", "RUN_INTERVAL_INVALID"
        )
    elif job.run_interval is not None and job.run_interval < MIN_RUN_INTERVAL:
        problems.add(f"{path}.run_interval", "at least 5 minutes", "RUN_INTERVAL_INVALID")
    return problems
