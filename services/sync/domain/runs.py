"""A job's run: what it read, what came of each row, and where the watermark went.

RUNNING     one per job at a time (a lease in the database, across replicas)
SUCCEEDED   every page read and every batch written; the job's watermark moves to the
            newest LastModifiedDate seen
FAILED      stopped by an error (the source unreachable, a lease lost); the watermark stays,
            so the next run reads again what this one may have missed
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RunMode(StrEnum):
    FULL = "FULL"
    INCREMENTAL = "INCREMENTAL"


class RunState(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass
class RunCounts:
    rows_read: int = 0
    assigned: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    removed: int = 0

    @property
    def skipped(self) -> int:
        return sum(self.skipped_by_reason.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "assigned": self.assigned,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "stale": self.stale,
            "removed": self.removed,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunCounts:
        skipped = raw.get("skipped_by_reason") or {}
        numbers: dict[str, Any] = {k: int(v) for k, v in raw.items() if k != "skipped_by_reason"}
        return cls(**numbers, skipped_by_reason=Counter({str(k): int(v) for k, v in skipped.items()}))


@dataclass
class Run:
    id: str
    job_id: str
    mode: RunMode
    state: RunState
    start_time: dt.datetime
    started_by: str
    counts: RunCounts = field(default_factory=RunCounts)
    watermark_before: dt.datetime | None = None
    watermark_after: dt.datetime | None = None
    end_time: dt.datetime | None = None
    error_code: str = ""
    error_message: str = ""
    queries: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"jobs/{self.job_id}/runs/{self.id}"

    def succeed(self, now: dt.datetime, newest_seen: dt.datetime | None) -> None:
        self.state, self.end_time = RunState.SUCCEEDED, now
        candidates = [t for t in (self.watermark_before, newest_seen) if t is not None]
        self.watermark_after = max(candidates) if candidates else None

    def fail(self, now: dt.datetime, code: str, message: str) -> None:
        self.state, self.end_time = RunState.FAILED, now
        self.error_code, self.error_message = code, message
        self.watermark_after = self.watermark_before


@dataclass(frozen=True)
class RunError:
    row: int
    account_id: str
    user_email: str
    user_name: str
    role_value: str
    role: str
    reason: str
    description: str
