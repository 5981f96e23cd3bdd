"""Plays editing: a new play or a saved one as the YAML document `steward plays apply` reads,
validated by the server before it is saved; the document can also be tried, unsaved, against a
sample event (what that shows is made in testing)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
from flask import flash, redirect, render_template, request, url_for
from google.protobuf.field_mask_pb2 import FieldMask

from services.cli.play_files import file_path, file_to_play, fill_defaults, load_text, play_to_file, to_yaml
from services.console.app import console, me
from services.console.forms import clean_text
from services.console.plays_words import line_of
from services.console.rpc_errors import problem_of
from services.console.views.plays import (
    SHOWN_BESIDE,
    Problem,
    Users,
    _as_me,
    _get_play,
    _require_author,
    _violations,
    blueprint,
)
from services.console.views.plays.testing import _event_from_json, _event_path, _result, _sample_event
from steward.rules.v1 import plays_pb2

MAX_DOCUMENT = 100_000
# UpdatePlay paths a play document holds (the file form has every updatable field but the secret).
DOCUMENT_PATHS = ("display_name", "description", "owner", "origin_team", "status", "priority", "trigger", "actions")
MAX_SECRET = 200
SECRET_FIELD = "webhook secret"
# Stands in for a webhook play's write-only secret in a dry run of its document (never called).
DRY_RUN_SECRET = "dry-run-" + "0" * 32
NEW_PLAY = """\
name: New play
status: draft
trigger:
  event: account_created
  criteria:
    all:
    - {field: segment, op: equals, value: Enterprise}
actions:
- create_task: {title: Kick-off call, holder_of_role: success_manager, due_in_days: 3}
"""


@blueprint.route("/plays/new", methods=["GET", "POST"])
def new_play() -> Any:
    _require_author()
    return _edit(None)


@blueprint.route("/plays/<uid>/edit", methods=["GET", "POST"])
def edit_play(uid: str) -> Any:
    _require_author()
    return _edit(_get_play(uid))


def _edit(current: plays_pb2.Play | None) -> Any:
    users = Users()
    form = {
        "document": NEW_PLAY if current is None else to_yaml(play_to_file(current, users.label)),
        "etag": current.etag if current else "",
        "request_id": str(uuid.uuid4()),
        "event": _sample_event(current) if current else _sample_event(None),
    }
    problems: list[Problem] = []
    message = ""
    if request.method == "POST":
        form = {
            "document": (request.form.get("document") or "").replace("\r\n", "\n"),
            "etag": clean_text(request.form.get("etag"), 200),
            "request_id": clean_text(request.form.get("request_id"), 100),
            "event": (request.form.get("event") or "").replace("\r\n", "\n"),
        }
        if not _is_uuid(form["request_id"]):
            form["request_id"] = str(uuid.uuid4())
        play, problems = _parse(form["document"], users)
        secret = request.form.get("webhook_secret") or ""
        if len(secret) > MAX_SECRET:
            problems.append(Problem(SECRET_FIELD, f"At most {MAX_SECRET} characters.", "WEBHOOK_SECRET_INVALID"))
        play.webhook_secret = secret
        if request.form.get("intent") == "test":
            return _test_document(current, form, play, problems, users)
        if not problems and current is not None:
            fill_defaults(play, current)
            if not secret and play_to_file(play, users.label) == play_to_file(current, users.label):
                flash(f"Nothing changed: “{current.display_name}” stays at version {current.version}.")
                return redirect(url_for("plays.view_play", uid=current.uid))
        if not problems:
            message, problems, _ = _save(play, current, form, validate_only=True)
        if not problems and not message:
            message, problems, saved = _save(play, current, form, validate_only=False)
            if saved is not None:
                return redirect(url_for("plays.view_play", uid=saved.uid))
        if problems and not message:
            message = "Nothing was saved: fix the problems listed with the document."
    return _edit_page(current, form, problems, message)


def _edit_page(
    current: plays_pb2.Play | None,
    form: dict[str, str],
    problems: list[Problem],
    message: str,
    result: dict[str, Any] | None = None,
    event_problems: list[Problem] | None = None,
) -> Any:
    for problem in problems:
        problem.line = line_of(form["document"], problem.path)
    return (
        render_template(
            "plays/edit.html",
            play=current,
            uid=current.uid if current else "",
            form=form,
            problems=problems,
            message=message,
            result=result,
            event_problems=event_problems or [],
            max_document=MAX_DOCUMENT,
            max_secret=MAX_SECRET,
        ),
        422 if problems or message or event_problems else 200,
    )


def _test_document(
    current: plays_pb2.Play | None,
    form: dict[str, str],
    play: plays_pb2.Play,
    problems: list[Problem],
    users: Users,
) -> Any:
    """The document as it is, unsaved, against the sample event (TestPlay validates it like
    CreatePlay): nothing is saved, and the form keeps what was typed."""
    event, event_problems = _event_from_json(form["event"])
    if problems or event_problems:
        message = "Nothing was tested: fix the problems listed." if problems else ""
        return _edit_page(current, form, problems, message, event_problems=event_problems)
    if current is not None:
        fill_defaults(play, current)
        play.uid = current.uid  # judged as the saved play (e.g. it does not compete with itself)
    if not play.owner:  # as CreatePlay would on Save (TestPlay gives no default)
        play.owner = f"users/{me().uid}"
    if not play.webhook_secret and any(a.HasField("call_webhook") for a in play.actions):
        play.webhook_secret = DRY_RUN_SECRET  # a dry run calls no webhook; Save asks for the real one
    try:
        reply = _as_me(console().gateway.plays.TestPlay, plays_pb2.TestPlayRequest(play=play, events=[event]))
    except grpc.RpcError as error:
        if problem_of(error).code not in SHOWN_BESIDE:
            raise
        message, reason, violations = _violations(error)
        of_event = [v for v in violations if v.field.startswith("events")]
        of_play = [v for v in violations if not v.field.startswith("events")]
        theirs = [Problem(_event_path(v.field), v.description, v.reason) for v in of_event]
        found = [Problem(_document_path(v.field), v.description, v.reason) for v in of_play]
        if not violations:
            found = [Problem("", message, reason)]
        note = "Nothing was tested: fix the problems listed." if found else ""
        return _edit_page(current, form, found, note, event_problems=theirs)
    tested = plays_pb2.Play()
    tested.CopyFrom(play)
    tested.name = ""  # matched under the name the server made up for it
    return _edit_page(current, form, [], "", result=_result(tested, event, reply, users))


def _parse(document: str, users: Users) -> tuple[plays_pb2.Play, list[Problem]]:
    """The Play a document describes (play_files' file form), and what is wrong with it locally."""
    if not document.strip():
        return plays_pb2.Play(), [Problem("", "The document is empty: write the play in it.", "REQUIRED")]
    if len(document) > MAX_DOCUMENT:
        return plays_pb2.Play(), [Problem("", f"The document is too long: at most {MAX_DOCUMENT:,} characters.")]
    sources, trouble = load_text("document", document)
    if trouble:
        return plays_pb2.Play(), [Problem(t.path, t.description, t.reason) for t in trouble]
    if len(sources) != 1:
        return plays_pb2.Play(), [Problem("", f"Write exactly one play here (found {len(sources)}).")]
    play, issues = file_to_play(sources[0].data, users.resolve, environ={})
    problems = [Problem(path, description, reason) for path, description, reason in issues]
    for problem in problems:
        if problem.path == "webhook_secret_env" and problem.reason == "ENV_MISSING":
            problem.description = (
                "The console cannot read environment variables: leave webhook_secret_env out "
                "and type the secret in the webhook secret field instead."
            )
    return play, problems


def _save(
    play: plays_pb2.Play, current: plays_pb2.Play | None, form: dict[str, str], *, validate_only: bool
) -> tuple[str, list[Problem], plays_pb2.Play | None]:
    """Validates (validate_only) or saves the play: a message and problems when refused, the
    play saved when saved."""
    plays = console().gateway.plays
    request_id = "" if validate_only else form["request_id"]
    try:
        if current is None:
            saved = _as_me(
                plays.CreatePlay,
                plays_pb2.CreatePlayRequest(play=play, validate_only=validate_only, request_id=request_id),
            )
        else:
            play.name, play.etag = current.name, form["etag"]
            saved = _as_me(
                plays.UpdatePlay,
                plays_pb2.UpdatePlayRequest(
                    play=play,
                    update_mask=FieldMask(paths=_paths(play)),
                    validate_only=validate_only,
                    request_id=request_id,
                ),
            )
    except grpc.RpcError as error:
        found = problem_of(error)
        if found.code not in SHOWN_BESIDE:
            raise
        message, reason, violations = _violations(error)
        if reason == "ETAG_MISMATCH" or found.code == grpc.StatusCode.ABORTED:
            return (
                "Someone else changed this play since you opened it, so nothing was saved. "
                "Copy your changes, open the play again (reload) and make them on its latest version.",
                [],
                None,
            )
        if not violations:
            return "", [Problem("", message, reason)], None
        return "", [Problem(_document_path(v.field), v.description, v.reason) for v in violations], None
    if validate_only:
        return "", [], None
    warnings = "; ".join(f"{file_path(w.field) or 'play'}: {w.description}" for w in saved.warnings)
    flash(f"Saved “{saved.display_name}”, version {saved.version}." + (f" Warning: {warnings}" if warnings else ""))
    return "", [], saved


def _paths(play: plays_pb2.Play) -> list[str]:
    """What the document sets: all of the play but its webhook secret, which is write-only (never
    in the document) and changes only when a new one is typed."""
    return [*DOCUMENT_PATHS, "webhook_secret"] if play.webhook_secret else list(DOCUMENT_PATHS)


def _document_path(server_field: str) -> str:
    path = file_path(server_field)
    return SECRET_FIELD if path == "webhook_secret_env" else path


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
