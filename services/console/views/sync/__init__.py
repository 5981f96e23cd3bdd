"""The Sync pages: connections (secrets write-only), connector jobs with the seed's flow (filter,
Load Preview, mapping and role table, Validate, Save and Sync), runs with a live progress bar and
their row errors, and CSV uploads to file upload jobs.

The sync service decides who may write (global admins, user managers, scope sync.write); the
console hides admin actions from others and refuses their forged POSTs first.

This module holds what the pages share: the blueprint, the limits and words, the calls to the
sync service with the signed-in user's token, and the error handlers. The pages themselves are in
connections, jobs, runs and uploads, registered on the blueprint when imported at the bottom."""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc
from flask import Blueprint, abort, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from services.console.app import console, log, may_manage_users, me
from services.console.rpc_errors import Problem, problem_of
from services.runtime.auth import mint_token
from steward.sync.v1 import connections_pb2 as cpb
from steward.sync.v1 import jobs_pb2 as jpb

blueprint = Blueprint("sync", __name__, url_prefix="/sync")
DEADLINE_SECONDS = 30.0
# What UploadService takes; other console forms stay at the app's 1 MiB.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_UID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
CONNECTORS = {
    "salesforce-etm": "Salesforce ETM (AccountUserTerritory2View)",
    "salesforce-account-team": "Salesforce Account Team Members",
}
UPLOAD_KINDS = {"assignments": "Account assignments", "users": "Users"}
# Row problems in words (the code stays beside them for whoever searches the docs).
ROW_REASONS = {
    "USER_NOT_FOUND": "The email matches no Steward user.",
    "USER_AMBIGUOUS": "Two users share that name.",
    "USER_NOT_ELIGIBLE": "That user may not hold account roles (not active, or a viewer).",
    "ROLE_UNMAPPED": "The role value is not in the role table.",
    "ROLE_NOT_FOUND": "The mapped role does not exist in Steward.",
    "ACCOUNT_ID_MISSING": "The row has no account id.",
    "COLUMN_COUNT_MISMATCH": "The line has a different number of cells than the header.",
    "EMAIL_INVALID": "Not an email address.",
    "LICENSE_INVALID": "The license is not practitioner, contributor or viewer.",
    "DUPLICATE_IN_FILE": "The same user appears twice in the file.",
    "TEAM_NOT_FOUND": "No such team.",
}


def reason_words(reason: str, fallback: str = "") -> str:
    return ROW_REASONS.get(reason, fallback or reason.replace("_", " ").lower())


def _meta() -> list[tuple[str, str]]:
    app = console()
    token = mint_token(app.config.jwt_secret, me().uid, ttl_seconds=max(app.config.call_token_seconds, 60))
    return [("authorization", f"Bearer {token}")]


def _call(method: Any, message: Any, timeout: float = DEADLINE_SECONDS) -> Any:
    return method(message, metadata=_meta(), timeout=timeout)


def _require_writer() -> None:
    if not may_manage_users(me()):
        abort(403)


def _uid(value: str) -> str:
    if not _UID.match(value):
        abort(404)
    return value


def _not_found(error: grpc.RpcError) -> None:
    if problem_of(error).code == grpc.StatusCode.NOT_FOUND:
        abort(404)


def _service_words(problem: Problem) -> str:
    if problem.code == grpc.StatusCode.UNAVAILABLE:
        return "The sync service cannot be reached right now. Try again in a moment."
    if problem.code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return "The sync service took too long to answer. Try again."
    if problem.reason == "RUN_IN_PROGRESS":
        return "This job is running already: wait for that run to end."
    return problem.message


def _when(message: Any, field: str) -> str:
    if not message.HasField(field):
        return ""
    return str(getattr(message, field).ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC"))


def run_word(state: int) -> str:
    return jpb.RunState.Name(state).removeprefix("RUN_STATE_").lower()


def mode_word(mode: int) -> str:
    return jpb.RunMode.Name(mode).removeprefix("RUN_MODE_").lower()


def _fields_to_form(problem: Problem, keys: dict[str, str], errors: dict[str, str]) -> list[str]:
    """Field violations beside their fields (by the first known word in the path), others listed."""
    rest = []
    for path, text in problem.field_list():
        key = next((form_key for word, form_key in keys.items() if word in path), "")
        if key:
            errors[key] = f"{errors[key]} {text}" if key in errors else text
        else:
            rest.append(f"{path}: {text}")
    return rest


def _upload_size() -> None:
    if request.endpoint == "sync.upload":
        request.max_content_length = MAX_UPLOAD_BYTES + 64 * 1024


@blueprint.record_once
def _first_of_all(state: Any) -> None:
    """The upload limit is raised before any other hook reads the form (the CSRF check does)."""
    state.app.before_request_funcs.setdefault(None, []).insert(0, _upload_size)


@blueprint.errorhandler(grpc.RpcError)
def _rpc_failed(error: grpc.RpcError) -> Any:
    """As the app's handler, naming the sync service when it is the one away."""
    problem = problem_of(error)
    log.warning("rpc_failed", path=request.path, code=problem.code.name, reason=problem.reason)
    status = 403 if problem.code == grpc.StatusCode.PERMISSION_DENIED else 503
    return render_template("error.html", title="The request failed", message=_service_words(problem)), status


@blueprint.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Any:
    message = "The file is larger than 50 MiB, the most an upload takes. Split it and upload each part."
    return render_template("error.html", title="Too large", message=message), 413


def connector_of(job: jpb.Job) -> str:
    if job.type == jpb.JOB_TYPE_FILE_UPLOAD:
        return "file upload"
    return job.connector or ("salesforce-etm" if job.WhichOneof("settings") == "etm" else "salesforce-account-team")


def _connection_labels() -> dict[str, str]:
    reply = _call(console().gateway.connections.ListConnections, cpb.ListConnectionsRequest(page_size=100))
    return {c.name: c.display_name for c in reply.connections}


def _request_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.uuid4())


def _get_job(uid: str) -> jpb.Job:
    try:
        job: jpb.Job = _call(console().gateway.jobs.GetJob, jpb.GetJobRequest(name=f"jobs/{_uid(uid)}"))
    except grpc.RpcError as error:
        _not_found(error)
        raise
    return job


def _runs(job: jpb.Job) -> list[jpb.Run]:
    return list(_call(console().gateway.jobs.ListRuns, jpb.ListRunsRequest(job=job.name, page_size=20)).runs)


def _run_url(run_name: str, endpoint: str = "sync.run") -> str:
    _, job_uid, _, run_uid = run_name.split("/")
    return url_for(endpoint, job_uid=job_uid, run_uid=run_uid)


# The pages register themselves on the blueprint when imported; they import from this module,
# so they come last, once everything they take from here is defined.
from services.console.views.sync import connections, jobs, runs, uploads  # noqa: E402, F401
