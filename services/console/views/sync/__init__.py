"""The Sync pages: connections (secrets write-only), connector jobs with the seed's flow (filter,
Load Preview, mapping and role table, Validate, Save and Sync), runs with a live progress bar and
their row errors, and CSV uploads to file upload jobs.

The sync service decides who may write (global admins, user managers, scope sync.write); the
console hides admin actions from others and refuses their forged POSTs first."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from google.protobuf.field_mask_pb2 import FieldMask
from werkzeug.exceptions import RequestEntityTooLarge

from services.console.app import console, log, may_manage_users, me
from services.console.forms import clean_text
from services.console.rpc_errors import Problem, problem_of
from services.runtime.auth import mint_token
from steward.sync.v1 import connections_pb2 as cpb
from steward.sync.v1 import jobs_pb2 as jpb
from steward.sync.v1 import uploads_pb2 as upb
from steward.users.v1 import users_pb2

blueprint = Blueprint("sync", __name__, url_prefix="/sync")
DEADLINE_SECONDS = 30.0
UPLOAD_SECONDS = 300.0
CHUNK_BYTES = 256 * 1024
PREVIEW_ROWS = 20
# What UploadService takes; other console forms stay at the app's 1 MiB.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_UID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$")
_VERSION = re.compile(r"^\d{2,3}\.\d$")
CONNECTORS = {
    "salesforce-etm": "Salesforce ETM (AccountUserTerritory2View)",
    "salesforce-account-team": "Salesforce Account Team Members",
}
# What the service's defaults are, shown as placeholders of the mapping table.
DEFAULT_MAPPING = {
    "salesforce-etm": {
        "account_id": "AccountId",
        "user_email": "User.Email",
        "user_name": "User.Name",
        "role": "RoleInTerritory2",
    },
    "salesforce-account-team": {
        "account_id": "AccountId",
        "user_email": "User.Email",
        "user_name": "User.Name",
        "role": "TeamMemberRole",
    },
}
MAPPING_LABELS = {
    "account_id": "Account Id",
    "user_email": "User Email",
    "user_name": "User Name",
    "role": "Account Role",
}
GRANTS = {"client_credentials": cpb.O_AUTH_GRANT_CLIENT_CREDENTIALS, "jwt_bearer": cpb.O_AUTH_GRANT_JWT_BEARER}
REMOVALS = {"report": jpb.REMOVALS_REPORT, "mirror": jpb.REMOVALS_MIRROR}
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


# Connections ------------------------------------------------------------------------------------


@blueprint.get("/")
def home() -> Any:
    return redirect(url_for("sync.list_jobs"))


@blueprint.get("/connections")
def list_connections() -> Any:
    reply = _call(console().gateway.connections.ListConnections, cpb.ListConnectionsRequest(page_size=100))
    return render_template("sync/connections.html", connections=list(reply.connections), when=_when)


CONNECTION_FORM = {
    "display_name": "",
    "instance_url": "",
    "api_version": "62.0",
    "grant": "client_credentials",
    "token_url": "",
    "client_id": "",
    "username": "",
    "request_id": "",
}


@blueprint.route("/connections/new", methods=["GET", "POST"])
def new_connection() -> Any:
    _require_writer()
    form = dict(CONNECTION_FORM, request_id=str(uuid.uuid4()))
    errors: dict[str, str] = {}
    problems: list[str] = []
    if request.method == "POST":
        form = {key: clean_text(request.form.get(key), 2000) for key in form}
        # Secrets are read once and never put back into the page.
        secret = (request.form.get("client_secret") or "").strip()
        private_key = (request.form.get("private_key") or "").strip()
        if not form["display_name"] or len(form["display_name"]) > 200:
            errors["display_name"] = "Enter a name of at most 200 characters."
        if not _URL.match(form["instance_url"]):
            errors["instance_url"] = "Enter the org's address, like https://acme.my.salesforce.com."
        if not _VERSION.match(form["api_version"]) or float(form["api_version"]) < 42.0:
            errors["api_version"] = "Enter an API version like 62.0 (at least 42.0)."
        if form["token_url"] and not _URL.match(form["token_url"]):
            errors["token_url"] = "Enter a web address, or leave it empty for the org's default."
        if not form["client_id"]:
            errors["client_id"] = "Enter the connected app's client id."
        if form["grant"] not in GRANTS:
            errors["grant"] = "Choose client credentials or JWT bearer."
        elif form["grant"] == "client_credentials" and not secret:
            errors["client_secret"] = "Enter the client secret."
        elif form["grant"] == "jwt_bearer":
            if not form["username"]:
                errors["username"] = "Enter the Salesforce username the token is for."
            if not private_key:
                errors["private_key"] = "Enter the private key that signs the assertion."
        if not errors:
            connection = cpb.Connection(
                display_name=form["display_name"],
                instance_url=form["instance_url"],
                api_version=form["api_version"],
                oauth=cpb.OAuthSettings(
                    grant=GRANTS[form["grant"]],
                    token_url=form["token_url"],
                    client_id=form["client_id"],
                    client_secret=secret if form["grant"] == "client_credentials" else "",
                    username=form["username"] if form["grant"] == "jwt_bearer" else "",
                    private_key=private_key if form["grant"] == "jwt_bearer" else "",
                ),
            )
            call = cpb.CreateConnectionRequest(connection=connection, request_id=_request_id(form["request_id"]))
            try:
                created = _call(console().gateway.connections.CreateConnection, call)
            except grpc.RpcError as error:
                found = problem_of(error)
                if found.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
                    raise
                problems = [_service_words(found)] if not found.fields else ["The connection was not created."]
                keys = {k: k for k in ("display_name", "instance_url", "api_version", "token_url", "client_id")}
                keys |= {"client_secret": "client_secret", "username": "username", "private_key": "private_key"}
                problems += _fields_to_form(found, keys, errors)
            else:
                flash(f"Connection {created.display_name} created. Test it to see what it can read.")
                return redirect(url_for("sync.list_connections"))
    status = 422 if errors or problems else 200
    return render_template(
        "sync/connection_form.html", form=form, errors=errors, problems=problems, grants=list(GRANTS)
    ), status


@blueprint.post("/connections/<uid>/test")
def test_connection(uid: str) -> Any:
    _require_writer()
    name = f"connections/{_uid(uid)}"
    try:
        connection = _call(console().gateway.connections.GetConnection, cpb.GetConnectionRequest(name=name))
        reply = _call(console().gateway.connections.TestConnection, cpb.TestConnectionRequest(name=name), 60.0)
    except grpc.RpcError as error:
        _not_found(error)
        raise
    return render_template("sync/connection_test.html", connection=connection, reply=reply, connectors=CONNECTORS)


# Jobs -------------------------------------------------------------------------------------------


def connector_of(job: jpb.Job) -> str:
    if job.type == jpb.JOB_TYPE_FILE_UPLOAD:
        return "file upload"
    return job.connector or ("salesforce-etm" if job.WhichOneof("settings") == "etm" else "salesforce-account-team")


@blueprint.get("/jobs")
def list_jobs() -> Any:
    app = console()
    jobs = list(_call(app.gateway.jobs.ListJobs, jpb.ListJobsRequest(page_size=200)).jobs)
    connections = _connection_labels()
    return render_template(
        "sync/jobs.html",
        jobs=jobs,
        connections=connections,
        connector_of=connector_of,
        when=_when,
        upload_name="",
        upload_error="",
    )


@blueprint.post("/jobs/new-upload")
def new_upload_job() -> Any:
    _require_writer()
    name = clean_text(request.form.get("display_name"), 300)
    error = "" if name and len(name) <= 200 else "Enter a name of at most 200 characters."
    if not error:
        job = jpb.Job(display_name=name, type=jpb.JOB_TYPE_FILE_UPLOAD)
        call = jpb.CreateJobRequest(job=job, request_id=_request_id(request.form.get("request_id", "")))
        try:
            created = _call(console().gateway.jobs.CreateJob, call)
        except grpc.RpcError as failed:
            found = problem_of(failed)
            if found.code not in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS):
                raise
            error = " ".join(found.fields.values()) or _service_words(found)
        else:
            flash(f"Upload job {created.display_name} created.")
            return redirect(url_for("sync.job", uid=created.uid))
    jobs = list(_call(console().gateway.jobs.ListJobs, jpb.ListJobsRequest(page_size=200)).jobs)
    return render_template(
        "sync/jobs.html",
        jobs=jobs,
        connections=_connection_labels(),
        connector_of=connector_of,
        when=_when,
        upload_name=name,
        upload_error=error,
    ), 422


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


def _settings_of(job: jpb.Job) -> Any:
    return job.etm if job.WhichOneof("settings") == "etm" else job.account_team


def _form_of(job: jpb.Job | None) -> dict[str, str]:
    if job is None:
        return {
            "display_name": "",
            "connection": "",
            "connector": "salesforce-etm",
            "query_filter": "",
            "fields": "",
            "account_id": "",
            "user_email": "",
            "user_name": "",
            "role": "",
            "roles": "",
            "removals": "report",
            "request_id": str(uuid.uuid4()),
        }
    settings = _settings_of(job)
    return {
        "display_name": job.display_name,
        "connection": job.connection,
        "connector": connector_of(job),
        "query_filter": settings.query_filter,
        "fields": ", ".join(settings.fields),
        "account_id": settings.mapping.account_id,
        "user_email": settings.mapping.user_email,
        "user_name": settings.mapping.user_name,
        "role": settings.mapping.role,
        "roles": "\n".join(
            f"{value} = {role.removeprefix('roles/')}" for value, role in sorted(settings.role_values.items())
        ),
        "removals": "mirror" if settings.removals == jpb.REMOVALS_MIRROR else "report",
        "request_id": str(uuid.uuid4()),
    }


def parse_role_table(text: str) -> tuple[dict[str, str], list[str]]:
    """Lines "CSM = success_manager" (or roles/success_manager): the table, and each bad line in words."""
    table: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        value, sep, role = line.rpartition("=")
        value, role = value.strip(), role.strip()
        if not sep or not value or not role:
            problems.append(
                f"Line {number}: write the Salesforce value, an equals sign and the role, like CSM = success_manager."
            )
            continue
        key = role.removeprefix("roles/")
        if not re.match(r"^[a-z][a-z0-9_]{0,63}$", key):
            problems.append(f"Line {number}: “{role}” is not a role key (lower case letters, digits and _).")
            continue
        if value in table:
            problems.append(f"Line {number}: “{value}” is mapped twice.")
            continue
        table[value] = f"roles/{key}"
    return table, problems


def _job_from_form(form: dict[str, str], errors: dict[str, str], saving: bool) -> jpb.Job:
    if saving and (not form["display_name"] or len(form["display_name"]) > 200):
        errors["display_name"] = "Enter a name of at most 200 characters."
    if not form["connection"].startswith("connections/"):
        errors["connection"] = "Choose the connection the job reads from."
    if form["connector"] not in CONNECTORS:
        errors["connector"] = "Choose Salesforce ETM or Salesforce Account Team Members."
    if len(form["query_filter"]) > 4000:
        errors["query_filter"] = "Keep the filter under 4000 characters."
    table, bad_lines = parse_role_table(form["roles"])
    if bad_lines:
        errors["roles"] = " ".join(bad_lines)
    elif saving and not table:
        errors["roles"] = "Map at least one Salesforce role value to a Steward role."
    if form["removals"] not in REMOVALS:
        errors["removals"] = "Choose report or mirror."
    fields = [f.strip() for f in re.split(r"[,\s]+", form["fields"]) if f.strip()]
    mapping = jpb.FieldMapping(
        account_id=form["account_id"], user_email=form["user_email"], user_name=form["user_name"], role=form["role"]
    )
    job = jpb.Job(display_name=form["display_name"] or "Preview", connection=form["connection"])
    if form["connector"] == "salesforce-account-team":
        job.connector = "salesforce-account-team"
        job.type = jpb.JOB_TYPE_CONNECTOR
        job.account_team.CopyFrom(
            jpb.AccountTeamSettings(
                fields=fields,
                query_filter=form["query_filter"],
                mapping=mapping,
                role_values=table,
                removals=REMOVALS.get(form["removals"], jpb.REMOVALS_REPORT),
            )
        )
    else:
        job.connector = "salesforce-etm"
        job.type = jpb.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT
        job.etm.CopyFrom(
            jpb.EtmSettings(
                fields=fields,
                query_filter=form["query_filter"],
                mapping=mapping,
                role_values=table,
                removals=REMOVALS.get(form["removals"], jpb.REMOVALS_REPORT),
            )
        )
    return job


JOB_FIELD_KEYS = {
    "display_name": "display_name",
    "connection": "connection",
    "connector": "connector",
    "query_filter": "query_filter",
    "role_values": "roles",
    "fields": "fields",
    "mapping.account_id": "account_id",
    "mapping.user_email": "user_email",
    "mapping.user_name": "user_name",
    "mapping.role": "role",
    "removals": "removals",
}


@blueprint.route("/jobs/new", methods=["GET", "POST"])
def new_job() -> Any:
    _require_writer()
    return _job_flow(None)


@blueprint.route("/jobs/<uid>", methods=["GET", "POST"])
def job(uid: str) -> Any:
    found = _get_job(uid)
    if request.method == "POST":
        _require_writer()
    if found.type == jpb.JOB_TYPE_FILE_UPLOAD:
        if request.method == "POST":
            abort(405)
        return render_template(
            "sync/upload_job.html",
            job=found,
            runs=_runs(found),
            kinds=UPLOAD_KINDS,
            kind="assignments",
            error="",
            run_word=run_word,
            mode_word=mode_word,
            when=_when,
        )
    return _job_flow(found)


def _job_flow(existing: jpb.Job | None) -> Any:
    """One page, the seed's order: connector and filter, Load Preview, mapping and role table,
    Validate, Save and Sync. Each button posts the whole form; the page comes back with its answer."""
    form = _form_of(existing)
    errors: dict[str, str] = {}
    problems: list[str] = []
    preview: jpb.PreviewJobResponse | None = None
    validation: jpb.ValidateJobResponse | None = None
    action = ""
    app = console()
    if request.method == "POST":
        action = request.form.get("action", "")
        form = {key: clean_text(request.form.get(key), 8000) for key in form}
        if existing is not None:
            form["connector"] = connector_of(existing)  # a job's connector cannot change
        if action not in ("preview", "validate", "save", "save_and_sync"):
            problems.append("Choose Load Preview, Validate, Save or Save and Sync.")
        saving = action in ("save", "save_and_sync")
        built = _job_from_form(form, errors, saving)
        if not errors and not problems:
            try:
                if action == "preview":
                    preview = _call(
                        app.gateway.jobs.PreviewJob, jpb.PreviewJobRequest(job=built, row_count=PREVIEW_ROWS), 60.0
                    )
                elif action == "validate":
                    validation = _call(app.gateway.jobs.ValidateJob, jpb.ValidateJobRequest(job=built), 120.0)
                else:
                    saved = _save(existing, built, form["request_id"])
                    if action == "save":
                        flash(f"Job {saved.display_name} saved.")
                        return redirect(url_for("sync.job", uid=saved.uid))
                    return _start_run(saved)
            except grpc.RpcError as error:
                found = problem_of(error)
                if found.code not in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    grpc.StatusCode.NOT_FOUND,
                    grpc.StatusCode.ABORTED,
                    grpc.StatusCode.ALREADY_EXISTS,
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise
                problems.append(_service_words(found) if not found.fields else "Some settings need a change.")
                problems += _fields_to_form(found, JOB_FIELD_KEYS, errors)
    status = 422 if errors or problems else 200
    return render_template(
        "sync/job.html",
        job=existing,
        form=form,
        errors=errors,
        problems=problems,
        action=action,
        preview=preview,
        validation=validation,
        connections=_connection_labels(),
        connectors=CONNECTORS,
        mapping_labels=MAPPING_LABELS,
        defaults=DEFAULT_MAPPING.get(form["connector"], DEFAULT_MAPPING["salesforce-etm"]),
        runs=_runs(existing) if existing else [],
        reason_words=reason_words,
        run_word=run_word,
        mode_word=mode_word,
        when=_when,
    ), status


def _save(existing: jpb.Job | None, built: jpb.Job, request_id: str) -> jpb.Job:
    jobs = console().gateway.jobs
    if existing is None:
        created: jpb.Job = _call(jobs.CreateJob, jpb.CreateJobRequest(job=built, request_id=_request_id(request_id)))
        return created
    built.name = existing.name
    built.ClearField("connector")
    settings = "etm" if built.WhichOneof("settings") == "etm" else "account_team"
    mask = FieldMask(paths=["display_name", "connection", settings])
    updated: jpb.Job = _call(jobs.UpdateJob, jpb.UpdateJobRequest(job=built, update_mask=mask))
    return updated


@blueprint.post("/jobs/<uid>/run")
def run_now(uid: str) -> Any:
    _require_writer()
    found = _get_job(uid)
    try:
        return _start_run(found)
    except grpc.RpcError as error:
        problem = problem_of(error)
        if problem.code not in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION):
            raise
        flash(_service_words(problem), "error")
        return redirect(url_for("sync.job", uid=found.uid))


def _start_run(job: jpb.Job) -> Any:
    """RunJob streams until the run ends; the first message names the run. The console reads it,
    then cancels the stream (the run goes on in the service) and the run page polls GetRun."""
    stream = console().gateway.jobs.RunJob(
        jpb.RunJobRequest(name=job.name, mode=jpb.RUN_MODE_FULL, request_id=str(uuid.uuid4())),
        metadata=_meta(),
        timeout=DEADLINE_SECONDS,
    )
    try:
        first: jpb.RunProgress = next(stream)
    finally:
        stream.cancel()
    return redirect(_run_url(first.run.name))


def _run_url(run_name: str, endpoint: str = "sync.run") -> str:
    _, job_uid, _, run_uid = run_name.split("/")
    return url_for(endpoint, job_uid=job_uid, run_uid=run_uid)


def _get_run(job_uid: str, run_uid: str) -> jpb.Run:
    name = f"jobs/{_uid(job_uid)}/runs/{_uid(run_uid)}"
    try:
        run: jpb.Run = _call(console().gateway.jobs.GetRun, jpb.GetRunRequest(name=name))
    except grpc.RpcError as error:
        _not_found(error)
        raise
    return run


def progress_of(run: jpb.Run) -> tuple[int, int]:
    """Rows handled of rows read so far (the source's total is not known before the end); a
    finished run is full."""
    c = run.counts
    handled = c.assigned + c.updated + c.unchanged + c.skipped
    if run.state != jpb.RUN_STATE_RUNNING:
        total = max(c.rows_read, handled, 1)
        return total, total
    return min(handled, c.rows_read), max(c.rows_read, 1)


def _run_context(run: jpb.Run) -> dict[str, Any]:
    value, maximum = progress_of(run)
    return {
        "run": run,
        "value": value,
        "maximum": maximum,
        "running": run.state == jpb.RUN_STATE_RUNNING,
        "state": run_word(run.state),
        "mode_word": mode_word,
        "when": _when,
        "reason_words": reason_words,
        "progress_url": _run_url(run.name, "sync.run_progress"),
    }


@blueprint.get("/jobs/<job_uid>/runs/<run_uid>")
def run(job_uid: str, run_uid: str) -> Any:
    found = _get_run(job_uid, run_uid)
    job_found = _get_job(job_uid)
    errors = _run_errors(found) if found.state != jpb.RUN_STATE_RUNNING else []
    return render_template(
        "sync/run.html", job=job_found, errors=errors, started_by=_who(found.started_by), **_run_context(found)
    )


def _who(started_by: str) -> str:
    """A person's email for "users/{uid}"; service accounts and "schedule" as they are."""
    if not started_by.startswith("users/"):
        return started_by
    try:
        user = console().gateway.as_user(
            me().uid, console().gateway.users.GetUser, users_pb2.GetUserRequest(name=started_by)
        )
    except grpc.RpcError:
        return started_by
    return str(user.email)


@blueprint.get("/jobs/<job_uid>/runs/<run_uid>/progress")
def run_progress(job_uid: str, run_uid: str) -> Any:
    """The fragment htmx polls every second; once the run has ended it stops polling and brings
    the row errors with it."""
    try:
        found = _get_run(job_uid, run_uid)
        errors = _run_errors(found) if found.state != jpb.RUN_STATE_RUNNING else []
    except grpc.RpcError as error:
        problem = problem_of(error)
        if problem.code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise
        # A moment without the service: say so and keep polling, the run goes on there.
        url = url_for("sync.run_progress", job_uid=job_uid, run_uid=run_uid)
        return render_template("sync/_progress_wait.html", progress_url=url, message=_service_words(problem))
    return render_template("sync/_progress.html", errors=errors, **_run_context(found))


def _run_errors(run: jpb.Run) -> list[jpb.RunError]:
    reply = _call(console().gateway.jobs.ListRunErrors, jpb.ListRunErrorsRequest(run=run.name, page_size=500))
    return list(reply.errors)


# Uploads ----------------------------------------------------------------------------------------


def _chunks(job: str, file_name: str, first: bytes, rest: Any, request_id: str) -> Iterator[upb.UploadChunk]:
    """The uploaded file as it was received (spooled by werkzeug), never whole in memory."""
    yield upb.UploadChunk(job=job, file_name=file_name, request_id=request_id, data=first)
    while data := rest.read(CHUNK_BYTES):
        yield upb.UploadChunk(data=data)


@blueprint.post("/jobs/<uid>/upload")
def upload(uid: str) -> Any:
    _require_writer()
    found = _get_job(uid)
    kind = request.form.get("kind", "")
    file = request.files.get("file")
    data = file.stream.read(CHUNK_BYTES) if file else b""
    file_name = clean_text(file.filename if file else "", 200)
    error = ""
    if found.type != jpb.JOB_TYPE_FILE_UPLOAD:
        error = "This job reads from a connection: files go to a file upload job."
    elif kind not in UPLOAD_KINDS:
        error = "Choose what the file holds: account assignments or users."
    elif not data:
        error = "Choose a CSV file that is not empty."
    if not error:
        uploads = console().gateway.uploads
        method = uploads.UploadAssignments if kind == "assignments" else uploads.UploadUsers
        try:
            finished: jpb.Run = method(
                _chunks(found.name, file_name, data, file.stream if file else None, str(uuid.uuid4())),
                metadata=_meta(),
                timeout=UPLOAD_SECONDS,
            )
        except grpc.RpcError as failed:
            problem = problem_of(failed)
            if problem.code not in (
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.ABORTED,
            ):
                raise
            error = _file_words(problem)
        else:
            return redirect(_run_url(finished.name))
    return render_template(
        "sync/upload_job.html",
        job=found,
        runs=_runs(found),
        kinds=UPLOAD_KINDS,
        kind=kind,
        error=error,
        run_word=run_word,
        mode_word=mode_word,
        when=_when,
    ), 422


FILE_WORDS = {
    "HEADER_INVALID": "The file's header row is wrong, nothing was written.",
    "FILE_ENCODING_INVALID": "The file is not UTF-8 text: save it as CSV UTF-8 and try again.",
    "FILE_MALFORMED": "The file is not well-formed CSV (check the quotes).",
    "FILE_TOO_LARGE": "The file is too large.",
    "JOB_NOT_FILE_UPLOAD": "This job does not take files.",
}


def _file_words(problem: Problem) -> str:
    head = FILE_WORDS.get(problem.reason, _service_words(problem))
    details = [f"{path.replace('header[', 'column ').rstrip(']')}: {text}" for path, text in problem.field_list()]
    return " ".join([head, *details])
