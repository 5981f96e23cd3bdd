"""`steward users ...` and `steward teams ...`: the directory from the command line."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from services.cli.client import all_pages, as_dict, call, console, emit, resource
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import users_pb2_grpc

users_app = typer.Typer(no_args_is_help=True, help="Invite, list and manage users.")
teams_app = typer.Typer(no_args_is_help=True, help="Teams and their members.")

USER_COLUMNS = [
    ("name", lambda u: u.name),
    ("email", lambda u: u.email),
    ("full name", lambda u: f"{u.first_name} {u.last_name}".strip()),
    ("status", lambda u: pb.UserStatus.Name(u.status).removeprefix("USER_STATUS_")),
    ("license", lambda u: pb.License.Name(u.license).removeprefix("LICENSE_")),
    ("admin", lambda u: "global" if u.global_admin else ("users" if u.user_management else "")),
]
TEAM_COLUMNS = [
    ("name", lambda t: t.name),
    ("team", lambda t: t.display_name),
    ("manager", lambda t: t.manager),
    ("members", lambda t: t.member_count),
]
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _users(invoke: Any) -> Any:
    return call("users", users_pb2_grpc.UserServiceStub, invoke)


def _teams(invoke: Any) -> Any:
    return call("users", users_pb2_grpc.TeamServiceStub, invoke)


def _enum(enum: Any, prefix: str, value: str, choices: str) -> str:
    """The proto enum value name for a CLI word (messages accept names), or a usage error."""
    name = f"{prefix}{value.upper().replace('-', '_')}"
    if name not in set(enum.keys()):
        raise typer.BadParameter(f"choose one of: {choices}")
    return name


def _license(name: str) -> str:
    return _enum(pb.License, "LICENSE_", name, "practitioner, contributor, viewer")


def _role(name: str) -> str:
    return _enum(pb.TeamRole, "TEAM_ROLE_", name, "member, admin")


def _membership(spec: str) -> pb.TeamMembership:
    team, _, role = spec.partition(":")
    return pb.TeamMembership(team=resource("teams", team), role=_role(role or "member"))


@users_app.command("list")
def list_users(
    show_deleted: bool = typer.Option(False, "--show-deleted"),
    page_size: int = typer.Option(100, help="Users per request; all pages are fetched."),
    as_json: bool = JSON,
) -> None:
    """Every user, ordered by email."""
    request = pb.ListUsersRequest(page_size=page_size, show_deleted=show_deleted)
    found = all_pages(request, "users", lambda r: _users(lambda stub, md: stub.ListUsers(r, metadata=md)))
    emit(found, USER_COLUMNS, as_json)


@users_app.command("get")
def get_user(user: str, as_json: bool = JSON) -> None:
    """One user, by id or users/<id>."""
    emit(
        _users(lambda s, md: s.GetUser(pb.GetUserRequest(name=resource("users", user)), metadata=md)),
        USER_COLUMNS,
        as_json,
    )


@users_app.command("invite")
def invite(
    emails: list[str] = typer.Argument(..., help="Addresses; commas work too."),
    license: str = typer.Option(..., "--license", "-l", help="practitioner, contributor or viewer"),
    global_admin: bool = typer.Option(False, "--global-admin"),
    team: list[str] = typer.Option([], "--team", help="TEAM_ID[:admin|member]; repeat for several."),
    send: bool = typer.Option(True, "--send/--no-send", help="Email the invitations now."),
    as_json: bool = JSON,
) -> None:
    """Invite people; nobody is created unless every address is fine."""
    request = pb.InviteUsersRequest(
        emails=emails,
        license=_license(license),
        global_admin=global_admin,
        team_memberships=[_membership(t) for t in team],
        send_invitation=send,
    )
    emit(_users(lambda s, md: s.InviteUsers(request, metadata=md)).users, USER_COLUMNS, as_json)


def _status_command(name: str, method: str, request_type: Any) -> None:
    def command(user: str, as_json: bool = JSON) -> None:
        emit(
            _users(lambda s, md: getattr(s, method)(request_type(name=resource("users", user)), metadata=md)),
            USER_COLUMNS,
            as_json,
        )

    command.__doc__ = f"{name.capitalize()} one user."
    users_app.command(name)(command)


_status_command("activate", "ActivateUser", pb.ActivateUserRequest)
_status_command("disable", "DisableUser", pb.DisableUserRequest)
_status_command("delete", "DeleteUser", pb.DeleteUserRequest)


@users_app.command("bulk")
def bulk(
    action: str = typer.Argument(..., help="send-invitation, delete, activate, disable, update-license, add-to-team"),
    users: list[str] = typer.Argument(..., help="User ids."),
    license: str = typer.Option("", "--license", help="For update-license."),
    team: str = typer.Option("", "--team", help="TEAM_ID[:role], for add-to-team."),
    as_json: bool = JSON,
) -> None:
    """One action over many users, with an outcome per user."""
    request = pb.BulkUserActionRequest(
        action=_enum(
            pb.BulkAction,
            "BULK_ACTION_",
            action,
            "send-invitation, delete, activate, disable, update-license, add-to-team",
        ),
        users=[resource("users", u) for u in users],
        license=_license(license) if license else None,
        team_membership=_membership(team) if team else None,
    )
    reply = _users(lambda s, md: s.BulkUserAction(request, metadata=md))
    emit(
        list(reply.outcomes),
        [
            ("user", lambda o: o.user),
            ("result", lambda o: pb.BulkUserOutcome.Result.Name(o.result).removeprefix("RESULT_")),
            ("reason", lambda o: o.reason),
        ],
        as_json,
    )


@users_app.command("licenses")
def licenses(as_json: bool = JSON) -> None:
    """Seats used and available per license."""
    usage = _users(lambda s, md: s.GetLicenseUsage(pb.GetLicenseUsageRequest(), metadata=md))
    emit(
        list(usage.entries),
        [
            ("license", lambda e: pb.License.Name(e.license).removeprefix("LICENSE_")),
            ("used", lambda e: e.used),
            ("limit", lambda e: e.limit if e.HasField("limit") else "unlimited"),
        ],
        as_json,
    )


@teams_app.command("list")
def list_teams(as_json: bool = JSON) -> None:
    request = pb.ListTeamsRequest(page_size=500)
    found = all_pages(request, "teams", lambda r: _teams(lambda stub, md: stub.ListTeams(r, metadata=md)))
    emit(found, TEAM_COLUMNS, as_json)


@teams_app.command("create")
def create_team(
    display_name: str, manager: str = typer.Option("", help="User id of the team manager."), as_json: bool = JSON
) -> None:
    team = pb.Team(display_name=display_name, manager=resource("users", manager) if manager else "")
    emit(_teams(lambda s, md: s.CreateTeam(pb.CreateTeamRequest(team=team), metadata=md)), TEAM_COLUMNS, as_json)


@teams_app.command("add-member")
def add_member(
    team: str, user: str, role: str = typer.Option("member", help="member or admin"), as_json: bool = JSON
) -> None:
    request = pb.AddTeamMemberRequest(team=resource("teams", team), user=resource("users", user), role=_role(role))
    member = _teams(lambda s, md: s.AddTeamMember(request, metadata=md))
    emit(
        member,
        [
            ("team", lambda m: m.team),
            ("user", lambda m: m.user),
            ("role", lambda m: pb.TeamRole.Name(m.role).removeprefix("TEAM_ROLE_")),
        ],
        as_json,
    )


@teams_app.command("remove-member")
def remove_member(team: str, user: str) -> None:
    _teams(
        lambda s, md: s.RemoveTeamMember(
            pb.RemoveTeamMemberRequest(team=resource("teams", team), user=resource("users", user)), metadata=md
        )
    )
    typer.echo("removed")


@users_app.command("reassign")
def reassign(
    user: str = typer.Argument(..., help="Id of the user whose things move."),
    to: str = typer.Option("", "--to", help="Receives every part not given its own target."),
    accounts_to: str = typer.Option("", "--accounts-to", help="Assignments and open tasks."),
    shared_to: str = typer.Option("", "--shared-to", help="Shared resources and campaign places."),
    private_to: str = typer.Option("", "--private-to", help="Private resources."),
    team_management_to: str = typer.Option("", "--team-management-to", help="Direct reports, managed teams."),
    teams_to: str = typer.Option("", "--teams-to", help="Joins the user's teams."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would move; change nothing."),
    as_json: bool = JSON,
) -> None:
    """Hand everything a user owns to others, in one transaction."""
    source = _users(lambda s, md: s.GetUser(pb.GetUserRequest(name=resource("users", user)), metadata=md))
    practitioner = source.license == pb.LICENSE_PRACTITIONER  # shared resources and team management need it

    def target(explicit: str, default_ok: bool = True) -> str:
        chosen = explicit or (to if default_ok else "")
        return resource("users", chosen) if chosen else ""

    plan = pb.ReassignmentPlan(
        accounts_and_tasks_to=target(accounts_to),
        private_resources_to=target(private_to),
        shared_resources_to=target(shared_to, practitioner),
        team_management_to=target(team_management_to, practitioner),
        team_memberships_to=target(teams_to),
    )
    summary = _users(
        lambda s, md: s.ReassignUserResources(
            pb.ReassignUserResourcesRequest(name=source.name, plan=plan, dry_run=dry_run), metadata=md
        )
    )
    parts = [
        (label, getattr(summary, field))
        for label, field in (
            ("assignments", "assignments"),
            ("open tasks", "open_tasks"),
            ("shared resources", "shared_resources"),
            ("campaign sender/BCC places", "campaign_places"),
            ("private resources", "private_resources"),
            ("direct reports", "direct_reports"),
            ("managed teams", "managed_teams"),
            ("team memberships", "team_memberships"),
            ("kept (integration-only roles)", "kept_integration_only"),
        )
    ]
    if as_json:
        print(json.dumps(as_dict(summary), indent=2))
        return
    table = Table("part", "to", "count", title="would move" if dry_run else "moved")
    for label, part in parts:
        table.add_row(label, part.target or "-", str(part.count))
    console.print(table)
