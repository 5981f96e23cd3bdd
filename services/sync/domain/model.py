"""An inbound integration job (Salesforce ETM account assignment, file upload)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from services.runtime.errors import NotFound
from services.runtime.etag import make_etag


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

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)


def job_not_found(job_id: str) -> NotFound:
    return NotFound("JOB_NOT_FOUND", f"no job jobs/{job_id}", metadata={"job": f"jobs/{job_id}"})
