"""Teams: the list with member counts, a new team, and a team's members added and removed."""

from __future__ import annotations

from typing import Any

import grpc
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from services.console.app import console, may_manage_users, me
from services.console.forms import clean_text
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

blueprint = Blueprint("teams", __name__)
NAME_LIMIT = 100
ROLES = {"member": users_pb2.TEAM_ROLE_MEMBER, "admin": users_pb2.TEAM_ROLE_ADMIN}


def may_manage_members(team_name: str) -> bool:
    """User managers, and the team's own admins (the service applies the same rule)."""
    mine = me()
    admin_here = any(m.team == team_name and m.role == users_pb2.TEAM_ROLE_ADMIN for m in mine.team_memberships)
    return may_manage_users(mine) or admin_here


def _require_member_rights(team_name: str) -> None:
    if not may_manage_members(team_name):
        abort(403)


def _all_teams() -> list[users_pb2.Team]:
    teams: list[users_pb2.Team] = []
    token = ""
    while len(teams) < 5000:
        reply = as_me(console().gateway.teams.ListTeams, users_pb2.ListTeamsRequest(page_size=200, page_token=token))
        teams.extend(reply.teams)
        token = reply.next_page_token
        if not token:
            break
    return teams


@blueprint.route("/teams", methods=["GET", "POST"])
def list_teams() -> Any:
    form = {"display_name": "", "manager": "", "request_id": request_id_of(None)}
    errors: dict[str, str] = {}
    problem = ""
    people = directory()
    emails = email_by_name(people)
    if request.method == "POST":
        require_manager()
        form = {
            "display_name": clean_text(request.form.get("display_name"), NAME_LIMIT + 1),
            "manager": clean_text(request.form.get("manager"), 80),
            "request_id": request_id_of(request.form.get("request_id")),
        }
        if not form["display_name"]:
            errors["display_name"] = "Enter the team's name."
        elif len(form["display_name"]) > NAME_LIMIT:
            errors["display_name"] = f"At most {NAME_LIMIT} characters."
        if form["manager"] and form["manager"] not in emails:
            errors["manager"] = "Choose a user from the list."
        if not errors:
            call = users_pb2.CreateTeamRequest(
                team=users_pb2.Team(display_name=form["display_name"], manager=form["manager"]),
                request_id=form["request_id"],
            )
            try:
                team = as_me(console().gateway.teams.CreateTeam, call)
            except grpc.RpcError as error:
                errors, problem = field_errors(expected_problem(error), ("display_name", "manager"), prefix="team.")
            else:
                flash(f"Team {team.display_name} created.")
                return redirect(url_for("teams.show", team_id=team.uid))
    status = 422 if errors or problem else 200
    managers = [u for u in people if u.status == users_pb2.USER_STATUS_ACTIVE]
    return (
        render_template(
            "people/teams.html",
            teams=_all_teams(),
            form=form,
            errors=errors,
            problem=problem,
            emails=emails,
            managers=managers,
        ),
        status,
    )


@blueprint.route("/teams/<team_id>", methods=["GET", "POST"])
def show(team_id: str) -> Any:
    valid_id(team_id)
    name = f"teams/{team_id}"
    app = console()
    errors: dict[str, str] = {}
    problem = ""
    form = {"user": "", "role": "member"}
    if request.method == "POST":
        _require_member_rights(name)
    people = directory()
    emails = email_by_name(people)
    if request.method == "POST":
        form = {"user": clean_text(request.form.get("user"), 80), "role": request.form.get("role", "")}
        if form["user"] not in emails:
            errors["user"] = "Choose a user from the list."
        if form["role"] not in ROLES:
            errors["role"] = "Choose member or admin."
        if not errors:
            call = users_pb2.AddTeamMemberRequest(
                team=name, user=form["user"], role=ROLES[form["role"]], request_id=request_id_of(None)
            )
            try:
                as_me(app.gateway.teams.AddTeamMember, call)
            except grpc.RpcError as error:
                errors, problem = field_errors(expected_problem(error), ("user", "role"))
            else:
                flash(f"{emails[form['user']]} added as {form['role']}.")
                return redirect(url_for("teams.show", team_id=team_id))
    team = read_or_404(app.gateway.teams.GetTeam, users_pb2.GetTeamRequest(name=name))
    members = list(
        as_me(app.gateway.teams.ListTeamMembers, users_pb2.ListTeamMembersRequest(team=name, page_size=500)).members
    )
    in_team = {m.user for m in members}
    candidates = [
        u
        for u in people
        if u.name not in in_team and u.status in (users_pb2.USER_STATUS_ACTIVE, users_pb2.USER_STATUS_CREATED)
    ]
    status = 422 if errors or problem else 200
    return (
        render_template(
            "people/team.html",
            team=team,
            team_id=team_id,
            members=members,
            candidates=candidates,
            emails=emails,
            form=form,
            errors=errors,
            problem=problem,
            roles=list(ROLES),
            may_manage=may_manage_members(name),
        ),
        status,
    )


@blueprint.post("/teams/<team_id>/remove")
def remove(team_id: str) -> Any:
    valid_id(team_id)
    _require_member_rights(f"teams/{team_id}")
    user = clean_text(request.form.get("user"), 80)
    if not user.startswith("users/"):
        flash("Choose a member to remove.", "error")
        return redirect(url_for("teams.show", team_id=team_id))
    call = users_pb2.RemoveTeamMemberRequest(team=f"teams/{team_id}", user=user, request_id=request_id_of(None))
    try:
        as_me(console().gateway.teams.RemoveTeamMember, call)
    except grpc.RpcError as error:
        flash(expected_problem(error).message, "error")
    else:
        flash("Member removed.")
    return redirect(url_for("teams.show", team_id=team_id))
