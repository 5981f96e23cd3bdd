"""Sync jobs: the list and a connector job's one page in the seed's order: connector and filter,
Load Preview, mapping and role table, Validate, Save and Sync. A file upload job's page is here too;
what it takes is in uploads."""

from __future__ import annotations

import re
import uuid
from typing import Any

import grpc
from flask import abort, flash, redirect, render_template, request, url_for
from google.protobuf.field_mask_pb2 import FieldMask

from services.console.app import console
from services.console.forms import clean_text
from services.console.rpc_errors import problem_of
from services.console.views.sync import (
    CONNECTORS,
    UPLOAD_KINDS,
    _call,
    _connection_labels,
    _fields_to_form,
    _get_job,
    _request_id,
    _require_writer,
    _runs,
    _service_words,
    _when,
    blueprint,
    connector_of,
    mode_word,
    reason_words,
    run_word,
)
from services.console.views.sync.runs import _start_run
from steward.sync.v1 import jobs_pb2 as jpb

PREVIEW_ROWS = 20
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
REMOVALS = {"report": jpb.REMOVALS_REPORT, "mirror": jpb.REMOVALS_MIRROR}


@blueprint.get("/")
def home() -> Any:
    return redirect(url_for("sync.list_jobs"))


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
    # The two connectors' settings messages have the same fields: one of them is filled.
    account_team = form["connector"] == "salesforce-account-team"
    job.connector = "salesforce-account-team" if account_team else "salesforce-etm"
    job.type = jpb.JOB_TYPE_CONNECTOR if account_team else jpb.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT
    settings = job.account_team if account_team else job.etm
    settings.fields.extend(fields)
    settings.query_filter = form["query_filter"]
    settings.mapping.CopyFrom(mapping)
    settings.role_values.update(table)
    settings.removals = REMOVALS.get(form["removals"], jpb.REMOVALS_REPORT)
    settings.SetInParent()
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
