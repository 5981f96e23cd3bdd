"""UserService and TeamService over gRPC: protobuf in, use cases, protobuf out. No business rules here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from services.runtime.auth import current_principal
from services.runtime.db import Database, utcnow
from services.runtime.errors import FieldViolation, InvalidArgument, Violations
from services.runtime.idempotency import recorded_answer, run_once
from services.runtime.names import format_name, parse_name
from services.runtime.pagination import PageRequest, list_response_page
from services.runtime.protobuf import enum_filter, enum_maps, update_paths
from services.users import convert
from services.users.adapters.orm import IdempotencyRecord
from services.users.adapters.repository import list_key, team_key
from services.users.config import UsersConfig
from services.users.domain.lifecycle import Action
from services.users.domain.model import User, UserStatus, ensure_visible, normalize_email
from services.users.domain.permissions import Actor, ensure_can_read
from services.users.domain.reassignment import Plan
from services.users.domain.teams import Membership, Team
from services.users.service_layer import invitations, lifecycle, profiles, reassignment, teams, upsert
from services.users.service_layer.actors import resolve_actor
from services.users.service_layer.seats import SeatLedger
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import users_pb2, users_pb2_grpc

R = TypeVar("R", bound=Message)
Work = Callable[[UsersUnitOfWork, Actor], R]

# ListUsersRequest.emails: at most this many addresses per call.
MAX_EMAIL_FILTER = 1000

# UpdateUser paths -> domain attribute names.
_USER_PATHS = {("manager" if p == "manager_id" else p): p for p in profiles.UPDATABLE}
_BULK = enum_maps(lifecycle.BulkKind, "BULK_ACTION_", users_pb2.BulkAction)[1]
_ROW_RESULT = enum_maps(upsert.RowResult, "RESULT_", users_pb2.UpsertUserOutcome.Result)[0]


class UsersServicerBase:
    """What every users-service servicer shares: the database, the config, and how calls run."""

    def __init__(self, db: Database, config: UsersConfig) -> None:
        self._db = db
        self._config = config

    def _write(self, method: str, request: Message, response_type: type[R], work: Work[R]) -> R:
        """One transaction, retried safely by request_id, acting as the resolved caller."""
        principal = current_principal()

        def run(uow: UsersUnitOfWork) -> R:
            return work(uow, resolve_actor(uow, principal))

        return run_once(lambda: UsersUnitOfWork(self._db), IdempotencyRecord, method, request, response_type, run)

    def _validate(self, method: str, request: Message, response_type: type[R], work: Work[R]) -> R:
        """A validate_only call (AIP-163) of the write `method`: `work` in a transaction that is
        never committed. Its request_id is looked up as the real call's (the same request without
        validate_only) and never recorded, so that the real call can still take it."""
        principal = current_principal()
        real = type(request)()
        real.CopyFrom(request)
        real.ClearField("validate_only")
        with UsersUnitOfWork(self._db, write=False) as uow:
            answered = recorded_answer(uow, IdempotencyRecord, method, real, response_type)
            if answered is not None:
                return answered
            return work(uow, resolve_actor(uow, principal))

    def _read(self, work: Callable[[UsersUnitOfWork, Actor], R]) -> R:
        with UsersUnitOfWork(self._db, write=False) as uow:
            actor = resolve_actor(uow, current_principal())
            ensure_can_read(actor)
            return work(uow, actor)


def _expiries(uow: UsersUnitOfWork, users: list[User]) -> dict[str, Any]:
    """Invitation expiry of the CREATED users among `users` (no query when there are none)."""
    return uow.invitations.open_expiry(u.id for u in users if u.status is UserStatus.CREATED)


def _user_reply(uow: UsersUnitOfWork, user: User) -> users_pb2.User:
    return convert.user_to_proto(user, _expiries(uow, [user]).get(user.id))


def _email_filter(emails: Sequence[str]) -> list[str]:
    """ListUsersRequest.emails, checked and normalised (lower-cased, sorted, each once)."""
    problems = Violations()
    if len(emails) > MAX_EMAIL_FILTER:
        problems.add("emails", f"at most {MAX_EMAIL_FILTER} addresses; got {len(emails)}", "TOO_MANY")
    for i, email in enumerate(emails):
        if not email.strip():
            problems.add(f"emails[{i}]", "must not be empty", "REQUIRED")
    problems.raise_if_any("invalid email filter")
    return sorted({normalize_email(e) for e in emails})


def plan_from_proto(plan: users_pb2.ReassignmentPlan) -> Plan:
    return Plan(
        **{
            field.name: parse_name("users", getattr(plan, field.name), f"plan.{field.name}")
            for field in users_pb2.ReassignmentPlan.DESCRIPTOR.fields
            if getattr(plan, field.name)
        }
    )


def summary_to_proto(summary: reassignment.Summary) -> users_pb2.ReassignmentSummary:
    def part(p: reassignment.Part) -> users_pb2.ReassignmentPart:
        return users_pb2.ReassignmentPart(
            target=format_name("users", p.target) if p.target else "",
            count=len(p.ids),
            ids=p.ids[: reassignment.MAX_IDS],
            ids_truncated=len(p.ids) > reassignment.MAX_IDS,
        )

    parts = {
        name: part(getattr(summary, name))
        for name in (
            "shared_resources",
            "campaign_places",
            "private_resources",
            "assignments",
            "open_tasks",
            "direct_reports",
            "managed_teams",
            "team_memberships",
            "kept_integration_only",
        )
    }
    return users_pb2.ReassignmentSummary(dry_run=summary.dry_run, **parts)


class UserServicer(UsersServicerBase, users_pb2_grpc.UserServiceServicer):
    def GetUser(self, request: users_pb2.GetUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        user_id = parse_name("users", request.name)
        return self._read(lambda uow, _: _user_reply(uow, ensure_visible(uow.users.get(user_id), user_id)))

    def ListUsers(
        self, request: users_pb2.ListUsersRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListUsersResponse:
        emails = _email_filter(request.emails)
        # Tokens stay bound to their filters; a request without emails keeps the fingerprint it always had.
        filters: dict[str, object] = {"show_deleted": request.show_deleted}
        if emails:
            filters["emails"] = emails

        def work(uow: UsersUnitOfWork, _: Actor) -> users_pb2.ListUsersResponse:
            def fetch(page: PageRequest) -> list[User]:
                return uow.users.list_page(
                    limit=page.limit, after=page.after, show_deleted=request.show_deleted, emails=emails
                )

            users, token = list_response_page(request.page_size, request.page_token, filters, 2, fetch, list_key)
            expiries = _expiries(uow, users)
            return users_pb2.ListUsersResponse(users=convert.users_to_proto(users, expiries), next_page_token=token)

        return self._read(work)

    def UpdateUser(self, request: users_pb2.UpdateUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        user_id = parse_name("users", request.user.name, "user.name")
        paths = update_paths(request.update_mask, frozenset(_USER_PATHS))
        changes = {_USER_PATHS[p]: self._user_value(request.user, p) for p in paths}

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.User:
            user = profiles.update_user(uow, self._config, actor, user_id, request.user.etag, changes, utcnow())
            return _user_reply(uow, user)

        return self._write("UpdateUser", request, users_pb2.User, work)

    @staticmethod
    def _user_value(message: users_pb2.User, path: str) -> Any:
        if path == "manager":
            return convert.optional_user_name(message.manager, "user.manager")
        if path == "license":
            return convert.license_from_proto(message.license, "user.license")
        value = getattr(message, path)
        if path == "alternative_emails":
            return list(value)
        if path == "custom_attributes":
            return dict(value)
        return value

    def InviteUsers(
        self, request: users_pb2.InviteUsersRequest, context: grpc.ServicerContext
    ) -> users_pb2.InviteUsersResponse:
        memberships = convert.memberships_from_proto(request.team_memberships, "team_memberships")
        license = convert.license_from_proto(request.license, required=False) if request.license else None
        send = request.send_invitation if request.HasField("send_invitation") else True

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.InviteUsersResponse:
            users = invitations.invite_users(
                uow,
                self._config,
                actor,
                list(request.emails),
                license,
                request.global_admin,
                memberships,
                send,
                utcnow(),
            )
            expiries = _expiries(uow, users)
            return users_pb2.InviteUsersResponse(users=convert.users_to_proto(users, expiries))

        return self._write("InviteUsers", request, users_pb2.InviteUsersResponse, work)

    def AcceptInvitation(
        self, request: users_pb2.AcceptInvitationRequest, context: grpc.ServicerContext
    ) -> users_pb2.User:
        # No caller to resolve: the token in the request is the credential.
        with UsersUnitOfWork(self._db) as uow:
            user = invitations.accept_invitation(uow, request.token, request.first_name, request.last_name, utcnow())
            reply = convert.user_to_proto(user)
            uow.commit()
        return reply

    def ResendInvitation(
        self, request: users_pb2.ResendInvitationRequest, context: grpc.ServicerContext
    ) -> users_pb2.User:
        user_id = parse_name("users", request.name)
        return self._write(
            "ResendInvitation",
            request,
            users_pb2.User,
            lambda uow, actor: _user_reply(
                uow, invitations.resend_invitation(uow, self._config, actor, user_id, utcnow())
            ),
        )

    def CancelInvitation(
        self, request: users_pb2.CancelInvitationRequest, context: grpc.ServicerContext
    ) -> users_pb2.User:
        user_id = parse_name("users", request.name)
        return self._write(
            "CancelInvitation",
            request,
            users_pb2.User,
            lambda uow, actor: _user_reply(
                uow, invitations.cancel_invitation(uow, self._config, actor, user_id, utcnow())
            ),
        )

    def _status_change(self, method: str, request: Any, action: Action) -> users_pb2.User:
        user_id = parse_name("users", request.name)
        has_plan = "reassignment" in request.DESCRIPTOR.fields_by_name and request.HasField("reassignment")
        plan = plan_from_proto(request.reassignment) if has_plan else None
        return self._write(
            method,
            request,
            users_pb2.User,
            lambda uow, actor: _user_reply(
                uow, lifecycle.change_status(uow, self._config, actor, user_id, request.etag, action, utcnow(), plan)
            ),
        )

    def ReassignUserResources(
        self, request: users_pb2.ReassignUserResourcesRequest, context: grpc.ServicerContext
    ) -> users_pb2.ReassignmentSummary:
        user_id = parse_name("users", request.name)
        plan = plan_from_proto(request.plan)

        def run(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.ReassignmentSummary:
            summary = reassignment.reassign(uow, self._config, actor, user_id, plan, request.dry_run, utcnow())
            return summary_to_proto(summary)

        if request.dry_run:  # reads only, but under the same locks and checks as the real thing
            with UsersUnitOfWork(self._db) as uow:
                return run(uow, resolve_actor(uow, current_principal()))
        return self._write("ReassignUserResources", request, users_pb2.ReassignmentSummary, run)

    def ActivateUser(self, request: users_pb2.ActivateUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        return self._status_change("ActivateUser", request, Action.ACTIVATE)

    def DisableUser(self, request: users_pb2.DisableUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        return self._status_change("DisableUser", request, Action.DISABLE)

    def DeleteUser(self, request: users_pb2.DeleteUserRequest, context: grpc.ServicerContext) -> users_pb2.User:
        return self._status_change("DeleteUser", request, Action.DELETE)

    def BulkUserAction(
        self, request: users_pb2.BulkUserActionRequest, context: grpc.ServicerContext
    ) -> users_pb2.BulkUserActionResponse:
        kind = enum_filter(request.action, _BULK, "action")
        problems = []
        if kind is None:
            problems.append(FieldViolation("action", "choose an action", "REQUIRED"))
        if not request.users:
            problems.append(FieldViolation("users", "name at least one user", "REQUIRED"))
        if len(request.users) > lifecycle.MAX_BULK:
            problems.append(FieldViolation("users", f"at most {lifecycle.MAX_BULK} users", "TOO_MANY"))
        if problems:
            raise InvalidArgument("INVALID_REQUEST", "invalid bulk action", field_violations=problems)
        assert kind is not None
        user_ids = [parse_name("users", name, f"users[{i}]") for i, name in enumerate(request.users)]
        license = convert.license_from_proto(request.license) if kind is lifecycle.BulkKind.UPDATE_LICENSE else None
        membership: Membership | None = None
        if kind is lifecycle.BulkKind.ADD_TO_TEAM:
            membership = convert.memberships_from_proto([request.team_membership], "team_membership")[0]

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.BulkUserActionResponse:
            outcomes = lifecycle.bulk_action(
                uow, self._config, actor, kind, user_ids, utcnow(), license=license, membership=membership
            )
            done = sum(1 for o in outcomes if o.done)
            return users_pb2.BulkUserActionResponse(
                outcomes=[
                    users_pb2.BulkUserOutcome(
                        user=format_name("users", o.user_id),
                        reason=o.reason,
                        description=o.description,
                        result="RESULT_DONE" if o.done else "RESULT_SKIPPED",
                    )
                    for o in outcomes
                ],
                done_count=done,
                skipped_count=len(outcomes) - done,
            )

        return self._write("BulkUserAction", request, users_pb2.BulkUserActionResponse, work)

    def UpsertUsers(
        self, request: users_pb2.UpsertUsersRequest, context: grpc.ServicerContext
    ) -> users_pb2.UpsertUsersResponse:
        rows = [
            upsert.UpsertRow(
                email=r.email,
                first_name=r.first_name,
                last_name=r.last_name,
                license=convert.license_from_proto(r.license, f"rows[{i}].license", required=False),
                status=convert.STATUS_FROM_PROTO.get(r.status),
                custom_attributes=dict(r.custom_attributes),
                teams=tuple(parse_name("teams", t, f"rows[{i}].teams[{j}]") for j, t in enumerate(r.teams)),
            )
            for i, r in enumerate(request.rows)
        ]

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.UpsertUsersResponse:
            outcomes = upsert.upsert_users(uow, self._config, actor, rows, utcnow())
            return users_pb2.UpsertUsersResponse(
                outcomes=[
                    users_pb2.UpsertUserOutcome(
                        row=o.row,
                        email=o.email,
                        result=_ROW_RESULT[o.result],
                        user=format_name("users", o.user_id) if o.user_id else "",
                        reason=o.reason,
                        description=o.description,
                    )
                    for o in outcomes
                ]
            )

        return self._write("UpsertUsers", request, users_pb2.UpsertUsersResponse, work)

    def GetLicenseUsage(
        self, request: users_pb2.GetLicenseUsageRequest, context: grpc.ServicerContext
    ) -> users_pb2.LicenseUsage:
        policy = self._config.licenses

        def work(uow: UsersUnitOfWork, _: Actor) -> users_pb2.LicenseUsage:
            used = SeatLedger(uow, policy).usage()
            return users_pb2.LicenseUsage(
                entries=[
                    users_pb2.LicenseUsage.Entry(license=convert.LICENSE_NAME[lic], used=count, limit=policy.limit(lic))
                    for lic, count in used.items()
                ],
                exempt_domains=sorted(policy.exempt_domains),
            )

        return self._read(work)


class TeamServicer(UsersServicerBase, users_pb2_grpc.TeamServiceServicer):
    def CreateTeam(self, request: users_pb2.CreateTeamRequest, context: grpc.ServicerContext) -> users_pb2.Team:
        manager = convert.optional_user_name(request.team.manager, "team.manager")
        return self._write(
            "CreateTeam",
            request,
            users_pb2.Team,
            lambda uow, actor: convert.team_to_proto(
                teams.create_team(uow, actor, request.team.display_name, manager, utcnow())
            ),
        )

    def GetTeam(self, request: users_pb2.GetTeamRequest, context: grpc.ServicerContext) -> users_pb2.Team:
        team_id = parse_name("teams", request.name)
        return self._read(lambda uow, _: convert.team_to_proto(teams.get_team(uow, team_id)))

    def ListTeams(
        self, request: users_pb2.ListTeamsRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListTeamsResponse:
        def work(uow: UsersUnitOfWork, _: Actor) -> users_pb2.ListTeamsResponse:
            def fetch(page: PageRequest) -> list[Team]:
                return uow.teams.list_page(limit=page.limit, after=page.after)

            found, token = list_response_page(request.page_size, request.page_token, {}, 2, fetch, team_key)
            return users_pb2.ListTeamsResponse(teams=[convert.team_to_proto(t) for t in found], next_page_token=token)

        return self._read(work)

    def UpdateTeam(self, request: users_pb2.UpdateTeamRequest, context: grpc.ServicerContext) -> users_pb2.Team:
        team_id = parse_name("teams", request.team.name, "team.name")
        paths = update_paths(request.update_mask, frozenset({"display_name", "manager"}))
        manager = convert.optional_user_name(request.team.manager, "team.manager") if "manager" in paths else None
        name = request.team.display_name if "display_name" in paths else None
        return self._write(
            "UpdateTeam",
            request,
            users_pb2.Team,
            lambda uow, actor: convert.team_to_proto(
                teams.update_team(uow, actor, team_id, request.team.etag, name, manager, "manager" in paths, utcnow())
            ),
        )

    def DeleteTeam(
        self, request: users_pb2.DeleteTeamRequest, context: grpc.ServicerContext
    ) -> users_pb2.DeleteTeamResponse:
        team_id = parse_name("teams", request.name)

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.DeleteTeamResponse:
            teams.delete_team(uow, actor, team_id, request.etag)
            return users_pb2.DeleteTeamResponse()

        return self._write("DeleteTeam", request, users_pb2.DeleteTeamResponse, work)

    def AddTeamMember(
        self, request: users_pb2.AddTeamMemberRequest, context: grpc.ServicerContext
    ) -> users_pb2.TeamMember:
        team_id = parse_name("teams", request.team, "team")
        user_id = parse_name("users", request.user, "user")
        role = convert.role_from_proto(request.role, "role")

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.TeamMember:
            teams.add_member(uow, actor, team_id, user_id, role)
            return users_pb2.TeamMember(team=request.team, user=request.user, role=convert.ROLE_NAME[role])

        return self._write("AddTeamMember", request, users_pb2.TeamMember, work)

    def RemoveTeamMember(
        self, request: users_pb2.RemoveTeamMemberRequest, context: grpc.ServicerContext
    ) -> users_pb2.RemoveTeamMemberResponse:
        team_id = parse_name("teams", request.team, "team")
        user_id = parse_name("users", request.user, "user")

        def work(uow: UsersUnitOfWork, actor: Actor) -> users_pb2.RemoveTeamMemberResponse:
            teams.remove_member(uow, actor, team_id, user_id)
            return users_pb2.RemoveTeamMemberResponse()

        return self._write("RemoveTeamMember", request, users_pb2.RemoveTeamMemberResponse, work)

    def ListTeamMembers(
        self, request: users_pb2.ListTeamMembersRequest, context: grpc.ServicerContext
    ) -> users_pb2.ListTeamMembersResponse:
        team_id = parse_name("teams", request.team, "team")

        def work(uow: UsersUnitOfWork, _: Actor) -> users_pb2.ListTeamMembersResponse:
            teams.get_team(uow, team_id)

            def fetch(page: PageRequest) -> list[tuple[str, Any]]:
                return uow.teams.members_page(team_id, limit=page.limit, after=page.after)

            members, token = list_response_page(
                request.page_size, request.page_token, {"team": team_id}, 1, fetch, lambda m: (m[0],)
            )
            return users_pb2.ListTeamMembersResponse(
                next_page_token=token,
                members=[
                    users_pb2.TeamMember(
                        team=request.team, user=format_name("users", uid), role=convert.ROLE_NAME[role]
                    )
                    for uid, role in members
                ],
            )

        return self._read(work)
