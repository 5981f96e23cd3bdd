"""Sync uploads: a file upload job, and the CSV files sent to it, streamed to UploadService in
chunks as received and never whole in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
from flask import flash, redirect, render_template, request, url_for

from services.console.app import console
from services.console.forms import clean_text
from services.console.rpc_errors import Problem, problem_of
from services.console.views.sync import (
    UPLOAD_KINDS,
    _call,
    _connection_labels,
    _get_job,
    _meta,
    _request_id,
    _require_writer,
    _run_url,
    _runs,
    _service_words,
    _when,
    blueprint,
    connector_of,
    mode_word,
    run_word,
)
from steward.sync.v1 import jobs_pb2 as jpb
from steward.sync.v1 import uploads_pb2 as upb

UPLOAD_SECONDS = 300.0
CHUNK_BYTES = 256 * 1024


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
