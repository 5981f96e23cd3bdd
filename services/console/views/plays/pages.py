"""Plays pages to read: the list with run counts, and a play in words with its recent runs
(filtered by outcome, paged by the service's cursor)."""

from __future__ import annotations

from typing import Any

import grpc
from flask import flash, redirect, render_template, request, url_for

from services.console.app import console, may_manage_users, me
from services.console.forms import clean_text
from services.console.plays_words import (
    action_words,
    outcome_word,
    reason_words,
    status_word,
    trigger_criteria,
    trigger_words,
)
from services.console.rpc_errors import problem_of
from services.console.views.people_kit import when
from services.console.views.plays import Users, _as_me, _get_play, blueprint
from steward.rules.v1 import plays_pb2
from steward.users.v1 import users_pb2

RECENT_RUNS = 25


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
