"""Sync runs: Run now, the run page with its live progress bar (htmx polls a fragment while the
run goes on in the service) and the rows that failed, once it has ended."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from flask import flash, redirect, render_template, url_for

from services.console.app import console, me
from services.console.rpc_errors import problem_of
from services.console.views.sync import (
    DEADLINE_SECONDS,
    _call,
    _get_job,
    _meta,
    _not_found,
    _require_writer,
    _run_url,
    _service_words,
    _uid,
    _when,
    blueprint,
    mode_word,
    reason_words,
    run_word,
)
from steward.sync.v1 import jobs_pb2 as jpb
from steward.users.v1 import users_pb2


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
