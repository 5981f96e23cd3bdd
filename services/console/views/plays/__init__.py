"""The Plays pages: the list with run counts, a play in words with its recent runs, editing the
play as the YAML document `steward plays apply` reads (validated by the server before it is
saved), and a dry run against a sample event (TestPlay). Everything goes through PlayService."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import grpc
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.json_format import MessageToDict
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from services.cli.play_files import file_path, file_to_play, fill_defaults, load_text, play_to_file, to_yaml
from services.cli.sample_events import event_from_json
from services.console.app import console, log, may_manage_users, me
from services.console.forms import clean_text
from services.console.plays_words import (
    Sentence,
    action_words,
    criteria_words,
    event_word,
    line_of,
    outcome_word,
    reason_words,
    status_word,
    trigger_criteria,
    trigger_words,
)
from services.console.rpc_errors import problem_of
from services.console.views.people_kit import when
from steward.rules.v1 import events_pb2, plays_pb2
from steward.users.v1 import users_pb2

blueprint = Blueprint("plays", __name__)
MAX_DOCUMENT = 100_000
RECENT_RUNS = 25
# Criteria with more top-level conditions than this are not taken apart to say which one failed.
MAX_PROBES = 10
# UpdatePlay paths a play document holds (the file form has every updatable field but the secret).
DOCUMENT_PATHS = ("display_name", "description", "owner", "origin_team", "status", "priority", "trigger", "actions")
MAX_SECRET = 200
SECRET_FIELD = "webhook secret"
# Stands in for a webhook play's write-only secret in a dry run of its document (never called).
DRY_RUN_SECRET = "dry-run-" + "0" * 32
USER_NAME = re.compile(r"users/[A-Za-z0-9_-]{1,64}")
UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Failures that are about the play or event sent: shown beside the document, not as an error page.
SHOWN_BESIDE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ABORTED,
}
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


# --- list and view ---------------------------------------------------------------------------


@blueprint.get("/plays")
def list_plays() -> Any:
    plays: list[plays_pb2.Play] = []
    token = ""
    for _ in range(20):  # at most 20,000 plays on one page; more would need paging here too
        reply = _as_me(console().gateway.plays.ListPlays, plays_pb2.ListPlaysRequest(page_size=1000, page_token=token))
        plays += reply.plays
        token = reply.next_page_token
        if not token:
            break
    return render_template(
        "plays/list.html", plays=plays, trigger_words=trigger_words, status_word=status_word, can_author=_can_author()
    )


def _can_author() -> bool:
    return may_manage_users(me())


OUTCOMES = {
    outcome_word(number): number
    for number in plays_pb2.RunOutcome.values()
    if number != plays_pb2.RUN_OUTCOME_UNSPECIFIED
}


@blueprint.get("/plays/<uid>")
def view_play(uid: str) -> Any:
    play = _get_play(uid)
    users = Users()
    outcome = request.args.get("outcome", "")
    if outcome not in OUTCOMES:
        outcome = ""
    cursor = clean_text(request.args.get("runs"), 2000)
    listing = plays_pb2.ListPlayRunsRequest(
        play=play.name,
        page_size=RECENT_RUNS,
        page_token=cursor,
        outcome=OUTCOMES.get(outcome, plays_pb2.RUN_OUTCOME_UNSPECIFIED),  # type: ignore[arg-type]
    )
    try:
        reply = _as_me(console().gateway.plays.ListPlayRuns, listing)
    except grpc.RpcError as error:
        if problem_of(error).code != grpc.StatusCode.INVALID_ARGUMENT:  # a cursor that is stale or made up
            raise
        flash("That page of runs is no longer there: here are the newest.", "error")
        return redirect(url_for("plays.view_play", uid=uid, outcome=outcome or None))
    return render_template(
        "plays/view.html",
        play=play,
        uid=uid,
        owner=users.label(play.owner) if play.owner else "",
        team=_team_label(play.origin_team),
        trigger=trigger_words(play.trigger),
        criteria=trigger_criteria(play.trigger),
        actions=[action_words(a, users.label) for a in play.actions],
        runs=reply.runs,
        next_runs=reply.next_page_token,
        first_runs=not cursor,
        outcome=outcome,
        outcomes=list(OUTCOMES),
        status_word=status_word,
        outcome_word=outcome_word,
        when=when,
        reason_words=reason_words,
        who=users.label,
        can_author=_can_author(),
    )


def _team_label(name: str) -> str:
    """A team's display name and its name, or its name alone when it cannot be read."""
    if not name:
        return ""
    try:
        team = _as_me(console().gateway.teams.GetTeam, users_pb2.GetTeamRequest(name=name))
    except grpc.RpcError as error:
        if problem_of(error).code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
            raise
        return name
    return f"{team.display_name} ({name})"


# --- edit and create -------------------------------------------------------------------------


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


# --- test against a sample event -------------------------------------------------------------


def _sample_event(play: plays_pb2.Play | None) -> str:
    event: dict[str, Any] = {"account_id": "acct-1"}
    trigger = play.trigger if play else plays_pb2.Trigger(event_type=events_pb2.EVENT_TYPE_ACCOUNT_CREATED)
    if trigger.event_type == events_pb2.EVENT_TYPE_CUSTOM:
        event["type"] = "custom"
        event["custom_type"] = trigger.custom_event_type
    elif trigger.event_type != events_pb2.EVENT_TYPE_UNSPECIFIED:
        event["type"] = events_pb2.EventType.Name(trigger.event_type).removeprefix("EVENT_TYPE_").lower()
    else:  # segment plays: any event that changes the account's state
        event["type"] = "account_updated"
    event["attributes"] = {}
    return json.dumps(event, indent=2)


def _event_from_json(text: str) -> tuple[events_pb2.AccountEvent, list[Problem]]:
    event, issues = event_from_json(text)
    return event, [Problem(path, description, reason) for path, description, reason in issues]


@blueprint.route("/plays/<uid>/test", methods=["GET", "POST"])
def test_play(uid: str) -> Any:
    play = _get_play(uid)
    users = Users()
    form = {"event": _sample_event(play)}
    problems: list[Problem] = []
    result: dict[str, Any] | None = None
    if request.method == "POST":
        form = {"event": (request.form.get("event") or "").replace("\r\n", "\n")}
        event, problems = _event_from_json(form["event"])
        if not problems:
            try:
                reply = _as_me(
                    console().gateway.plays.TestPlay, plays_pb2.TestPlayRequest(name=play.name, events=[event])
                )
            except grpc.RpcError as error:
                if problem_of(error).code not in SHOWN_BESIDE:
                    raise
                message, reason, violations = _violations(error)
                problems = [Problem(_event_path(v.field), v.description, v.reason) for v in violations] or [
                    Problem("", message, reason)
                ]
            else:
                result = _result(play, event, reply, users)
    return (
        render_template(
            "plays/test.html",
            play=play,
            uid=uid,
            form=form,
            problems=problems,
            result=result,
            trigger=trigger_words(play.trigger),
            criteria=trigger_criteria(play.trigger),
        ),
        422 if problems else 200,
    )


def _event_path(field: str) -> str:
    return re.sub(r"^events\[\d+\]\.?", "", field)


def _result(
    play: plays_pb2.Play, event: events_pb2.AccountEvent, reply: plays_pb2.TestPlayResponse, users: Users
) -> dict[str, Any]:
    # One play was tested: a saved one by its name, an unsaved one under a name made up for it.
    matches = [m for r in reply.results for m in r.matches if m.play == play.name or not play.name]
    if matches:
        actions = [
            {
                "description": _with_emails(a.description, users),
                "skipped": reason_words(a.skipped_reason, f"{a.winner} wins this role") if a.skipped_reason else "",
            }
            for a in matches[0].actions
        ]
        return {"matched": True, "actions": actions, "why": [], "unmet": []}
    why, unmet = _why_not(play, event)
    return {"matched": False, "actions": [], "why": why, "unmet": unmet}


def _with_emails(text: str, users: Users) -> str:
    """A service's sentence with users/{uid} written as the users' emails."""
    return USER_NAME.sub(lambda found: users.label(found.group(0)), text)


def _why_not(play: plays_pb2.Play, event: events_pb2.AccountEvent) -> tuple[list[str], list[Sentence]]:
    """Why the event did not match, as far as the play's trigger tells; and, for an event play
    whose event type matches, which of its criteria the event does not meet (each one asked of
    TestPlay on its own, as an unsaved copy of the play)."""
    trigger = play.trigger
    if trigger.kind == plays_pb2.TRIGGER_KIND_MANUAL:
        return ["This play runs only by hand (RunPlay): no event matches it."], []
    if trigger.kind not in (plays_pb2.TRIGGER_KIND_UNSPECIFIED, plays_pb2.TRIGGER_KIND_EVENT):
        return [
            "A segment play fires only when this event makes the account start (or stop) meeting "
            "the criteria shown above, over its last known state; this one does not."
        ], []
    custom = events_pb2.EVENT_TYPE_CUSTOM
    wanted = (trigger.event_type, trigger.custom_event_type if trigger.event_type == custom else "")
    given = (event.type, event.custom_type if event.type == custom else "")
    if wanted != given:
        return [f"The play fires on {event_word(*wanted)} events; this is {_a(event_word(*given))} event."], []
    if not trigger.HasField("criteria"):
        return ["The rules service found no match."], []
    unmet = _unmet_conditions(play, event)
    return [
        "The event's attributes, merged over the account's last known attributes, do not meet the criteria"
        + (": it misses these." if unmet else ".")
    ], unmet


def _unmet_conditions(play: plays_pb2.Play, event: events_pb2.AccountEvent) -> list[Sentence]:
    criteria = MessageToDict(play.trigger.criteria)
    conditions = criteria["all"] if isinstance(criteria.get("all"), list) else [criteria]
    if len(conditions) > MAX_PROBES:
        return []
    unmet = []
    for condition in conditions:
        probe = plays_pb2.Play()
        probe.CopyFrom(play)
        probe.trigger.criteria.Clear()
        probe.trigger.criteria.update(condition)
        try:
            reply = _as_me(console().gateway.plays.TestPlay, plays_pb2.TestPlayRequest(play=probe, events=[event]))
        except grpc.RpcError:
            return []  # the answer above stands on its own
        if not any(r.matches for r in reply.results):
            unmet.append(criteria_words(condition))
    return unmet


def _a(words: str) -> str:
    return f"an {words}" if words[:1] in "aeiou" else f"a {words}"
