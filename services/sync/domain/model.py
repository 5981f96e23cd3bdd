"""An inbound integration job (Salesforce ETM account assignment, file upload).

DRAFT    saved (always valid); runs only when asked
ACTIVE   also runs every run_interval (incremental once a full run has succeeded)
PAUSED   runs only when asked
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from services.runtime.errors import FailedPrecondition, NotFound, Violations
from services.runtime.etag import make_etag
from services.sync.domain.etm import EtmSettings


class JobType(StrEnum):
    ETM_ACCOUNT_ASSIGNMENT = "ETM_ACCOUNT_ASSIGNMENT"
    FILE_UPLOAD = "FILE_UPLOAD"


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
    etm: EtmSettings | None = None
    run_interval: dt.timedelta | None = None
    watermark: dt.datetime | None = None
    last_run_id: str = ""

    @property
    def name(self) -> str:
        return f"jobs/{self.id}"

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)


def etm_settings(job: Job) -> EtmSettings:
    """The job's ETM settings; a job of another kind (a file upload job) has none to preview,
    validate or read: FAILED_PRECONDITION naming its type."""
    if job.etm is None:
        raise FailedPrecondition(
            "JOB_NOT_ETM",
            f"{job.name} is a {job.type.value} job: it reads nothing from Salesforce ETM",
            metadata={"job": job.name, "type": job.type.value},
        )
    return job.etm


def job_not_found(job_id: str) -> NotFound:
    return NotFound("JOB_NOT_FOUND", f"no job jobs/{job_id}", metadata={"job": f"jobs/{job_id}"})


MIN_RUN_INTERVAL = dt.timedelta(minutes=5)


def check_job(job: Job, path: str = "job") -> Violations:
    problems = Violations()
    if not job.display_name.strip() or len(job.display_name) > 200:
        problems.add(f"{path}.display_name", "1 to 200 characters", "DISPLAY_NAME_INVALID")
    if job.type is JobType.ETM_ACCOUNT_ASSIGNMENT:
        if not job.connection_id:
            problems.add(f"{path}.connection", "an ETM job reads from a connection", "REQUIRED")
        if job.etm is None:
            problems.add(f"{path}.etm", "an ETM job needs its settings", "REQUIRED")
    if job.run_interval is not None and job.type is not JobType.ETM_ACCOUNT_ASSIGNMENT:
        problems.add(
            f"{path}.run_interval", "only jobs that read from a connection run on a schedule", "RUN_INTERVAL_INVALID"
        )
    elif job.run_interval is not None and job.run_interval < MIN_RUN_INTERVAL:
        problems.add(f"{path}.run_interval", "at least 5 minutes", "RUN_INTERVAL_INVALID")
    return problems
