"""What the people pages (a user, reassignment, teams, roles, an account's team) share: calls as
the signed-in user, the rights check before a form is served or taken, the directory of users by
name for showing emails, and a failed call turned into words beside the fields it names."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from typing import Any

import grpc
from flask import abort
from google.protobuf.timestamp_pb2 import Timestamp

from services.console.app import console, may_manage_users, me
from services.console.rpc_errors import Problem, problem_of
from steward.users.v1 import users_pb2

# Reasons the people pages meet that the shared table does not word for a person.
PEOPLE_WORDS = {
    "ETAG_MISMATCH": "Someone else changed this since you opened the page. The form now shows the current "
    "values: make your change again.",
    "PLAN_EMPTY": "Choose a receiver for at least one kind of thing.",
    "TARGET_IS_SOURCE": "A receiver cannot be the user whose things move.",
    "TARGET_NOT_ELIGIBLE": "A chosen receiver cannot take these things (they must be active and licensed for them).",
    "TARGET_CANNOT_OWN_SHARED": "A viewer cannot own shared resources: choose a practitioner or contributor.",
    "SHARED_RESOURCES_NEED_PRACTITIONER": "Shared resources can only go to a practitioner.",
    "TEAM_MANAGEMENT_NEEDS_PRACTITIONER": "Team management can only go to a practitioner.",
    "HIERARCHY_DISABLED": "The employee hierarchy is turned off: team management cannot be handed over.",
    "ROLE_EXISTS": "A role with that key already exists.",
    "ROLE_KEY_INVALID": "Use lower-case letters, digits and underscores, starting with a letter.",
    "TEAM_EXISTS": "A team with that name already exists.",
    "ALREADY_MEMBER": "That user is already a member of this team.",
}
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DIRECTORY_LIMIT = 5000


def as_me(method: Any, request_message: Any) -> Any:
    return console().gateway.as_user(me().uid, method, request_message)


def read_or_404(method: Any, request_message: Any) -> Any:
    """A Get of the thing a page is about: an id that names nothing is a 404 page, not a failure."""
    try:
        return as_me(method, request_message)
    except grpc.RpcError as error:
        if problem_of(error).code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            abort(404)
        raise


def require_manager() -> None:
    """The service refuses anyway; the console refuses first, so a forged form goes no further."""
    if not may_manage_users(me()):
        abort(403)


def valid_id(value: str) -> str:
    """A path segment naming a user, team or role; anything else is a 404, never a call."""
    if not _ID.match(value):
        abort(404)
    return value


def request_id_of(value: str | None) -> str:
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return str(uuid.uuid4())


def words(problem: Problem) -> str:
    return PEOPLE_WORDS.get(problem.reason, problem.message)


def expected_problem(error: grpc.RpcError) -> Problem:
    """A refusal a form shows (bad input, a precondition, a conflict); anything else goes to the error page."""
    problem = problem_of(error)
    shown = {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.OUT_OF_RANGE,
    }
    if problem.code not in shown:
        raise error
    problem.message = words(problem)
    return problem


def field_errors(problem: Problem, fields: Iterable[str], prefix: str = "") -> tuple[dict[str, str], str]:
    """The violations keyed by the form's own field names, and the rest as one sentence."""
    errors: dict[str, str] = {}
    rest: list[str] = []
    known = set(fields)
    for path, text in problem.field_list():
        key = path.removeprefix(prefix)
        if key in known:
            errors[key] = f"{errors[key]} {text}" if key in errors else text
        else:
            rest.append(f"{path}: {text}")
    message = problem.message if not problem.fields else "Please correct the fields marked below."
    if rest:
        message = f"{message} {'; '.join(rest)}"
    return errors, message


def directory() -> list[users_pb2.User]:
    """Every listed user (up to a few thousand), for pickers and for showing emails."""
    found: list[users_pb2.User] = []
    token = ""
    while len(found) < DIRECTORY_LIMIT:
        reply = as_me(console().gateway.users.ListUsers, users_pb2.ListUsersRequest(page_size=200, page_token=token))
        found.extend(reply.users)
        token = reply.next_page_token
        if not token:
            break
    return found


def email_by_name(users: Iterable[users_pb2.User]) -> dict[str, str]:
    return {u.name: u.email for u in users}


def when(stamp: Timestamp, precise: bool = False) -> str:
    """In UTC, to the second (to the millisecond when `precise`: changes a moment apart)."""
    if not stamp.seconds and not stamp.nanos:
        return ""
    moment = stamp.ToDatetime(tzinfo=dt.UTC)
    if precise:
        return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} UTC"
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def parse_moment(text: str) -> Timestamp | None:
    """A date (the end of that day, UTC), a local date and time (read as UTC), or an RFC 3339 moment.
    None when it is none of these."""
    text = text.strip()
    stamp = Timestamp()
    if not text or len(text) > 40:
        return None
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
            stamp.FromDatetime(day + dt.timedelta(days=1) - dt.timedelta(microseconds=1))
        elif text.endswith("Z"):
            stamp.FromJsonString(text)
        else:
            moment = dt.datetime.fromisoformat(text)
            stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
    except ValueError:
        return None
    if stamp.seconds < 0:
        return None
    return stamp
