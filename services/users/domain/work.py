"""Tasks on accounts, and the resources users own (what reassignment moves)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum

from services.runtime.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound, Violations
from services.users.domain.model import UserStatus, user_not_found
from services.users.domain.status_policy import policy_of

MAX_TITLE = 300
# BatchCreateTasks: items per call.
MAX_TASK_BATCH = 1000


class TaskStatus(StrEnum):
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"


@dataclass
class Task:
    id: str
    account_id: str
    title: str
    assignee_id: str | None
    status: TaskStatus
    created_by: str  # "users/{uid}" or "plays/{uid}"
    create_time: dt.datetime
    due_time: dt.datetime | None = None
    complete_time: dt.datetime | None = None

    def complete(self, now: dt.datetime) -> None:
        if self.status is TaskStatus.COMPLETED:
            raise FailedPrecondition(
                "TASK_COMPLETED", "the task is already completed", metadata={"task": f"tasks/{self.id}"}
            )
        self.status = TaskStatus.COMPLETED
        self.complete_time = now


def _task_problems(title: str, account_id: str) -> Violations:
    problems = Violations()
    if not title.strip():
        problems.add("task.title", "is required", "REQUIRED")
    elif len(title) > MAX_TITLE:
        problems.add("task.title", f"at most {MAX_TITLE} characters", "TOO_LONG")
    check_account_id(account_id, "task.account_id", problems)
    return problems


def check_task(title: str, account_id: str) -> None:
    _task_problems(title, account_id).raise_if_any()


def task_item_problem(title: str, account_id: str) -> InvalidArgument | None:
    """What check_task refuses, as the failure of one item of a batch: reason TITLE_INVALID (the
    title's problem comes first) or ACCOUNT_ID_INVALID, with every field violation. None: valid."""
    problems = _task_problems(title, account_id)
    if not problems.items:
        return None
    reason = "TITLE_INVALID" if problems.items[0].field == "task.title" else "ACCOUNT_ID_INVALID"
    described = "; ".join(f"{v.field} {v.description}" for v in problems.items)
    return InvalidArgument(reason, described, field_violations=problems.items)


def holder_problem(user_id: str, status: UserStatus | None, what: str) -> DomainError | None:
    """May this user (of this status; None: no such user) be handed work ("be assigned tasks",
    "own resources")? They must exist and their status be enabled (status_policy). None: they may."""
    if status is None:
        return user_not_found(user_id)
    if not policy_of(status).enabled:
        return FailedPrecondition(
            "USER_NOT_ELIGIBLE", f"a {status.value} user cannot {what}", metadata={"user": f"users/{user_id}"}
        )
    return None


_CONTROL = re.compile(r"[\x00-\x1f]")


def is_account_id(account_id: str) -> bool:
    """1 to 255 printable characters (a batch checks thousands: no per-character Python loop)."""
    return bool(account_id.strip()) and len(account_id) <= 255 and _CONTROL.search(account_id) is None


def check_account_id(account_id: str, field: str, problems: Violations) -> None:
    if not is_account_id(account_id):
        problems.add(field, "a CRM account id: 1 to 255 printable characters", "ACCOUNT_ID_INVALID")


def task_not_found(task_id: str) -> NotFound:
    return NotFound("TASK_NOT_FOUND", f"no task tasks/{task_id}", metadata={"task": f"tasks/{task_id}"})


class ResourceKind(StrEnum):
    CAMPAIGN = "CAMPAIGN"
    SEGMENT = "SEGMENT"
    PLAY = "PLAY"
    SUCCESS_BLOC = "SUCCESS_BLOC"
    REPORT = "REPORT"


class Visibility(StrEnum):
    SHARED = "SHARED"
    PRIVATE = "PRIVATE"


class CampaignStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"


@dataclass
class Resource:
    kind: ResourceKind
    id: str
    display_name: str
    owner_id: str
    visibility: Visibility
    update_time: dt.datetime
    campaign_status: CampaignStatus | None = None
    senders: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"resources/{self.kind.value.lower()}/{self.id}"


PRIVATE_KINDS = frozenset({ResourceKind.SEGMENT, ResourceKind.PLAY, ResourceKind.SUCCESS_BLOC})


def check_visibility(kind: ResourceKind, visibility: Visibility) -> None:
    """Campaigns and reports are always shared; only segments, plays and SuccessBLOCs can be private."""
    if visibility is Visibility.PRIVATE and kind not in PRIVATE_KINDS:
        problems = Violations()
        problems.add("resource.visibility", f"a {kind.value} is always SHARED", "VISIBILITY_NOT_ALLOWED")
        problems.raise_if_any()


def resource_not_found(kind: ResourceKind, resource_id: str) -> NotFound:
    return NotFound("RESOURCE_NOT_FOUND", f"no resource resources/{kind.value.lower()}/{resource_id}")
