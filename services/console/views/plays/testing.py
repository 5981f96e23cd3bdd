"""Plays testing: a dry run against a sample event (TestPlay) on a saved play's test page, and
what an answer says in words: the actions the play would take, or why the event did not match
and which of its criteria the event misses. The edit page shows an unsaved document's dry run
with the same words."""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
from flask import render_template, request
from google.protobuf.json_format import MessageToDict

from services.cli.sample_events import event_from_json
from services.console.app import console
from services.console.plays_words import (
    Sentence,
    criteria_words,
    event_word,
    reason_words,
    trigger_criteria,
    trigger_words,
)
from services.console.rpc_errors import problem_of
from services.console.views.plays import SHOWN_BESIDE, Problem, Users, _as_me, _get_play, _violations, blueprint
from steward.rules.v1 import events_pb2, plays_pb2

# Criteria with more top-level conditions than this are not taken apart to say which one failed.
MAX_PROBES = 10
USER_NAME = re.compile(r"users/[A-Za-z0-9_-]{1,64}")


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
