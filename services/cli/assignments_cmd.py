"""`steward roles`, `assign`, `unassign`, `team`, `assignments` and `events watch`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

import typer
from google.protobuf.timestamp_pb2 import Timestamp

from services.cli.client import all_pages, as_dict, call, console, emit
from steward.users.v1 import assignments_pb2 as pb
from steward.users.v1 import assignments_pb2_grpc, events_pb2, events_pb2_grpc

roles_app = typer.Typer(no_args_is_help=True, help="Account assignment roles.")
events_app = typer.Typer(no_args_is_help=True, help="The users service's event stream.")
JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")
ROLE_COLUMNS = [
    ("role", lambda r: r.name),
    ("display name", lambda r: r.display_name),
    ("attribute", lambda r: r.attribute),
    ("source", lambda r: pb.RoleSource.Name(r.source).removeprefix("ROLE_SOURCE_")),
    ("assignments", lambda r: r.assignment_count),
]
ASSIGNMENT_COLUMNS = [
    ("account", lambda a: a.account_id),
    ("role", lambda a: a.role),
    ("user", lambda a: a.user),
    ("source", lambda a: pb.AssignmentSource.Name(a.source).removeprefix("ASSIGNMENT_SOURCE_")),
]


def _assign(invoke: Any) -> Any:
    return call("users", assignments_pb2_grpc.AssignmentServiceStub, invoke)


def _user_ref(user: str) -> pb.UserRef:
    if user.startswith("users/"):
        return pb.UserRef(user=user)
    if "@" in user:
        return pb.UserRef(email=user)
    return pb.UserRef(full_name=user)


def _role(role: str) -> str:
    return role if role.startswith("roles/") else f"roles/{role}"


def _source(name: str, ref: str) -> pb.WriteSource:
    return pb.WriteSource(source=f"ASSIGNMENT_SOURCE_{name.upper()}", source_ref=ref)


@roles_app.command("list")
def list_roles(as_json: bool = JSON) -> None:
    roles = all_pages(
        pb.ListRolesRequest(page_size=500), "roles", lambda r: _assign(lambda s, md: s.ListRoles(r, metadata=md))
    )
    emit(roles, ROLE_COLUMNS, as_json)


@roles_app.command("create")
def create_role(
    key: str,
    display_name: str,
    description: str = "",
    integration_only: bool = typer.Option(False, "--integration-only"),
    clear_on_empty: bool = typer.Option(False, "--clear-on-empty", help="Uploads with no user clear it."),
    as_json: bool = JSON,
) -> None:
    role = pb.Role(
        key=key,
        display_name=display_name,
        description=description,
        source="ROLE_SOURCE_INTEGRATION_ONLY" if integration_only else "ROLE_SOURCE_EDITABLE",
        empty_value="EMPTY_VALUE_CLEAR" if clear_on_empty else "EMPTY_VALUE_KEEP_EXISTING",
    )
    emit(_assign(lambda s, md: s.CreateRole(pb.CreateRoleRequest(role=role), metadata=md)), ROLE_COLUMNS, as_json)


@roles_app.command("delete")
def delete_role(key: str, force: bool = typer.Option(False, "--force", help="Clear its assignments too.")) -> None:
    reply = _assign(lambda s, md: s.DeleteRole(pb.DeleteRoleRequest(name=_role(key), force=force), metadata=md))
    typer.echo(f"deleted; {reply.cleared_assignments} assignments cleared")


def assign(
    account: str,
    role: str,
    user: str = typer.Argument(..., help="users/<id>, an email or a full name"),
    source: str = typer.Option("manual", help="manual, bulk, integration or play"),
    source_ref: str = typer.Option("", help="Integration or job id."),
    as_json: bool = JSON,
) -> None:
    """Name the holder of ROLE on ACCOUNT."""
    request = pb.SetAssignmentRequest(
        account_id=account, role=_role(role), user=_user_ref(user), source=_source(source, source_ref)
    )
    emit(_assign(lambda s, md: s.SetAssignment(request, metadata=md)), ASSIGNMENT_COLUMNS, as_json)


def unassign(account: str, role: str, source: str = typer.Option("manual")) -> None:
    """Clear ROLE on ACCOUNT."""
    request = pb.ClearAssignmentRequest(account_id=account, role=_role(role), source=_source(source, ""))
    reply = _assign(lambda s, md: s.ClearAssignment(request, metadata=md))
    typer.echo(f"cleared (was {reply.previous_user or 'nobody'})")


def team(
    account: str,
    as_of: str = typer.Option("", "--as-of", help="ISO date or time, e.g. 2026-03-01"),
    as_json: bool = JSON,
) -> None:
    """Who holds which role on ACCOUNT, now or at --as-of."""
    request = pb.GetAccountTeamRequest(account_id=account)
    if as_of:
        moment = dt.datetime.fromisoformat(as_of)
        stamp = Timestamp()
        stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))
        request.as_of.CopyFrom(stamp)
    reply = _assign(lambda s, md: s.GetAccountTeam(request, metadata=md))
    emit(list(reply.assignments), ASSIGNMENT_COLUMNS, as_json)


def assignments(
    user: str = typer.Option("", "--user", help="users/<id>"),
    role: str = typer.Option(""),
    account: str = typer.Option(""),
    as_json: bool = JSON,
) -> None:
    """Assignments by user, role and/or account (e.g. the accounts whose Success Manager is X)."""
    request = pb.ListAssignmentsRequest(page_size=500, user=user, role=_role(role) if role else "", account_id=account)
    found = all_pages(request, "assignments", lambda r: _assign(lambda s, md: s.ListAssignments(r, metadata=md)))
    emit(found, ASSIGNMENT_COLUMNS, as_json)


@events_app.command("watch")
def watch(
    after: str = typer.Option("", "--after", help="Resume after this cursor."),
    type_: list[str] = typer.Option([], "--type", help="Only these event types."),
    limit: int = typer.Option(0, help="Stop after this many events (0: follow until Ctrl-C)."),
    as_json: bool = JSON,
) -> None:
    """Follow the event stream; each line carries the cursor to resume after."""
    request = events_pb2.WatchEventsRequest(after_cursor=after, types=type_)

    def follow(stub: Any, md: Any) -> None:
        for count, event in enumerate(stub.WatchEvents(request, metadata=md), start=1):
            if as_json:
                print(json.dumps(as_dict(event)), flush=True)
            else:
                console.print(
                    f"{event.cursor:>8}  {event.type:<22} {event.subject}  {json.dumps(as_dict(event).get('data', {}))}"
                )
            if limit and count >= limit:
                return

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops following
        call("users", events_pb2_grpc.EventServiceStub, follow)
