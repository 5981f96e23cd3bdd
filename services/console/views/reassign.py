"""Reassign a user's things: a receiver per kind, a dry run that lists what would move (nothing
changes), then Confirm, which sends the same plan with a request id kept in the form so a retried
confirm is applied once."""

from __future__ import annotations

from typing import Any

import grpc
from flask import Blueprint, render_template, request

from services.console.app import console
from services.console.views.people_kit import (
    as_me,
    directory,
    email_by_name,
    expected_problem,
    field_errors,
    read_or_404,
    request_id_of,
    require_manager,
    valid_id,
)
from steward.users.v1 import users_pb2

blueprint = Blueprint("reassign", __name__)
# The plan's fields, as ReassignmentPlan names them, with what each hands over.
KINDS = {
    "accounts_and_tasks_to": "Accounts (their account roles) and open tasks",
    "shared_resources_to": "Shared resources and campaign sender places",
    "private_resources_to": "Private resources",
    "team_management_to": "Team management and direct reports",
    "team_memberships_to": "Team memberships",
}
# The summary's parts, in the order a person reads them.
PARTS = {
    "assignments": "Account roles",
    "open_tasks": "Open tasks",
    "shared_resources": "Shared resources",
    "campaign_places": "Campaign sender places",
    "private_resources": "Private resources",
    "direct_reports": "Direct reports",
    "managed_teams": "Managed teams",
    "team_memberships": "Team memberships",
    "kept_integration_only": "Kept (integration-only roles follow their source)",
}


@blueprint.route("/users/<uid>/reassign", methods=["GET", "POST"])
def plan(uid: str) -> Any:
    valid_id(uid)
    require_manager()
    app = console()
    user: users_pb2.User = read_or_404(app.gateway.users.GetUser, users_pb2.GetUserRequest(name=f"users/{uid}"))
    people = directory()
    emails = email_by_name(people)
    receivers = [u for u in people if u.status == users_pb2.USER_STATUS_ACTIVE and u.name != user.name]
    chosen = dict.fromkeys(KINDS, "")
    errors: dict[str, str] = {}
    problem = ""
    summary = None
    step = "choose"
    # The confirm's id is made when the dry run is shown, so a retried confirm is the same request.
    request_id = request_id_of(request.form.get("request_id") if request.form.get("action") == "confirm" else None)
    if request.method == "POST":
        action = request.form.get("action", "")
        for kind in KINDS:
            value = request.form.get(kind, "")
            if value and value not in emails:
                errors[kind] = "Choose a user from the list."
            chosen[kind] = value
        if not any(chosen.values()) and not errors:
            problem = "Choose a receiver for at least one kind of thing."
        if action not in ("dry_run", "confirm"):
            problem = "Run the dry run first."
        if not errors and not problem:
            call = users_pb2.ReassignUserResourcesRequest(
                name=user.name,
                plan=users_pb2.ReassignmentPlan(**chosen),
                dry_run=action == "dry_run",
                request_id=request_id,
            )
            try:
                summary = as_me(app.gateway.users.ReassignUserResources, call)
            except grpc.RpcError as error:
                errors, problem = field_errors(expected_problem(error), KINDS, prefix="plan.")
            else:
                step = "preview" if action == "dry_run" else "done"
                request_id = request_id_of(None) if step == "preview" else request_id
    rows = []
    if summary is not None:
        emails |= _team_names([*summary.managed_teams.ids, *summary.team_memberships.ids])
        for key, label in PARTS.items():
            part = getattr(summary, key)
            rows.append(
                {
                    "key": key,
                    "label": label,
                    "count": part.count,
                    "to": emails.get(part.target, part.target),
                    "ids": list(part.ids),
                    "truncated": part.ids_truncated,
                }
            )
    status = 422 if errors or problem else 200
    return (
        render_template(
            "people/reassign.html",
            user=user,
            kinds=KINDS,
            receivers=receivers,
            chosen=chosen,
            errors=errors,
            problem=problem,
            step=step,
            rows=rows,
            request_id=request_id,
            emails=emails,
        ),
        status,
    )


def _team_names(names: list[str]) -> dict[str, str]:
    """Teams by their display names in the summary (what a person recognises), ids otherwise."""
    found = {}
    for team_name in sorted(set(names))[:50]:
        try:
            team = as_me(console().gateway.teams.GetTeam, users_pb2.GetTeamRequest(name=team_name))
        except grpc.RpcError:
            continue
        found[team_name] = f"team {team.display_name}"
    return found
