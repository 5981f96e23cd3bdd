"""The Plays pages: the list with run counts, a play in words with its recent runs, editing the
play as the YAML document `steward plays apply` reads (validated by the server before it is
saved), and a dry run against a sample event (TestPlay). Everything goes through PlayService.

This module holds what the pages share: the blueprint, the error handler, calls as the signed-in
user, reading a play, users by email and the violations of a refused call. The pages themselves
are in pages, editing and testing, registered on the blueprint when imported at the bottom."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import grpc
from flask import Blueprint, abort, render_template, request
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.console.app import console, log, may_manage_users, me
from services.console.rpc_errors import problem_of
from steward.rules.v1 import plays_pb2
from steward.users.v1 import users_pb2

blueprint = Blueprint("plays", __name__)
UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Failures that are about the play or event sent: shown beside the document, not as an error page.
SHOWN_BESIDE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ABORTED,
}


@dataclass
class Problem:
    """One thing wrong, in file terms: where (a key path of the document), what, which line."""

    path: str
    description: str
    reason: str = ""
    line: int | None = None


@blueprint.errorhandler(grpc.RpcError)
def _failed(error: grpc.RpcError) -> Any:
    """As the console's own handler, but these pages call the rules service as well as users:
    an outage does not name only the users service."""
    problem = problem_of(error)
    if problem.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        problem.message = "The rules or users service cannot be reached right now. Try again in a moment."
    log.warning("rpc_failed", path=request.path, code=problem.code.name, reason=problem.reason)
    status = 403 if problem.code == grpc.StatusCode.PERMISSION_DENIED else 503
    return render_template("error.html", title="The request failed", message=problem.message), status


def _as_me(method: Any, message: Any) -> Any:
    return console().gateway.as_user(me().uid, method, message)


def _require_author() -> None:
    # Writing plays needs the directory rights the rules service checks again on each call.
    if not may_manage_users(me()):
        abort(403)


def _play_name(uid: str) -> str:
    if not UID.match(uid):
        abort(404)
    return f"plays/{uid}"


def _get_play(uid: str) -> plays_pb2.Play:
    try:
        play: plays_pb2.Play = _as_me(console().gateway.plays.GetPlay, plays_pb2.GetPlayRequest(name=_play_name(uid)))
    except grpc.RpcError as error:
        if problem_of(error).code == grpc.StatusCode.NOT_FOUND:
            abort(404)
        raise
    return play


class Users:
    """Emails of users/{uid} and back, looked up once per request."""

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}

    def label(self, name: str) -> str:
        if not name.startswith("users/"):
            return name
        if name not in self.labels:
            try:
                user = _as_me(console().gateway.users.GetUser, users_pb2.GetUserRequest(name=name))
                self.labels[name] = user.email
            except grpc.RpcError as error:
                if problem_of(error).code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                    raise
                self.labels[name] = name
        return self.labels[name]

    def resolve(self, email: str) -> str | None:
        reply = _as_me(
            console().gateway.users.ListUsers, users_pb2.ListUsersRequest(page_size=10, emails=[email.lower()])
        )
        found = next((u for u in reply.users if u.email.lower() == email.lower()), None)
        return found.name if found else None


def _violations(error: grpc.RpcError) -> tuple[str, str, list[error_details_pb2.BadRequest.FieldViolation]]:
    """The message, the ErrorInfo reason and the field violations of a failed call."""
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    reason, violations = "", []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = list(bad.field_violations)
    return problem_of(error).message, reason, violations


# The pages register themselves on the blueprint when imported; they import from this module,
# so they come last, once everything they take from here is defined.
from services.console.views.plays import editing, pages, testing  # noqa: E402, F401
