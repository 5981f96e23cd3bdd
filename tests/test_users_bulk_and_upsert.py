"""BulkUserAction outcomes per reason, and UpsertUsers for integrations (with team memberships)."""

from __future__ import annotations

import uuid

import grpc

from services.users.config import UsersConfig
from services.users.domain.licenses import LicensePolicy
from services.users.domain.model import License, UserStatus
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import users_pb2 as pb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user

P, C, V = pb.LICENSE_PRACTITIONER, pb.LICENSE_CONTRIBUTOR, pb.LICENSE_VIEWER
DONE, SKIPPED = pb.BulkUserOutcome.RESULT_DONE, pb.BulkUserOutcome.RESULT_SKIPPED


def _bulk(api, admin, action, users, **kw):
    return api.users.BulkUserAction(
        pb.BulkUserActionRequest(action=action, users=[f"users/{u.id}" for u in users], **kw), metadata=admin
    )


def _outcomes(reply):
    return [(o.result, o.reason) for o in reply.outcomes]


def test_bulk_disable_skips_with_reasons_and_changes_only_the_done(users_api, admin):
    api = users_api()
    db = api.db
    active = add_user(db, "active@example.com")
    created = add_user(db, "created@example.com", status=UserStatus.CREATED)
    boss = add_user(db, "boss@example.com", global_admin=True)
    gone = add_user(db, "gone@example.com", status=UserStatus.DELETED)
    ghost = type("Ghost", (), {"id": str(uuid.uuid4())})()
    reply = _bulk(api, admin, pb.BULK_ACTION_DISABLE, [active, created, boss, gone, ghost, active])
    assert _outcomes(reply) == [
        (DONE, ""),
        (SKIPPED, "TRANSITION_NOT_ALLOWED"),
        (SKIPPED, "GLOBAL_ADMIN_PROTECTED"),
        (SKIPPED, "TRANSITION_NOT_ALLOWED"),
        (SKIPPED, "USER_NOT_FOUND"),
        (SKIPPED, "DUPLICATE_IN_REQUEST"),
    ]
    assert (reply.done_count, reply.skipped_count) == (1, 5)
    statuses = {
        u.email: u.status for u in api.users.ListUsers(pb.ListUsersRequest(show_deleted=True), metadata=admin).users
    }
    assert statuses == {
        "active@example.com": pb.USER_STATUS_DISABLED,
        "created@example.com": pb.USER_STATUS_CREATED,
        "boss@example.com": pb.USER_STATUS_ACTIVE,
        "gone@example.com": pb.USER_STATUS_DELETED,
    }


def test_bulk_send_invitation_refuses_active_users(users_api, smtp, admin):
    api = users_api()
    active = add_user(api.db, "active@example.com")
    created = add_user(api.db, "created@example.com", status=UserStatus.CREATED)
    from_import = add_user(api.db, "imported@example.com", status=UserStatus.CREATED_DISABLED)
    reply = _bulk(api, admin, pb.BULK_ACTION_SEND_INVITATION, [active, created, from_import])
    assert _outcomes(reply) == [(SKIPPED, "TRANSITION_NOT_ALLOWED"), (DONE, ""), (DONE, "")]
    smtp.wait_for("created@example.com")
    smtp.wait_for("imported@example.com")
    assert smtp.to("active@example.com") == []


def test_bulk_activate_stops_at_the_seat_limit(users_api, admin):
    api = users_api(UsersConfig(licenses=LicensePolicy({License.PRACTITIONER: 2})))
    add_user(api.db, "holder@example.com")
    sleepers = [add_user(api.db, f"s{i}@example.com", status=UserStatus.DISABLED) for i in range(3)]
    reply = _bulk(api, admin, pb.BULK_ACTION_ACTIVATE, sleepers)
    assert _outcomes(reply) == [(DONE, ""), (SKIPPED, "LICENSE_EXHAUSTED"), (SKIPPED, "LICENSE_EXHAUSTED")]


def test_bulk_update_license_and_add_to_team(users_api, admin):
    api = users_api()
    practitioner, viewer = add_user(api.db, "p@example.com"), add_user(api.db, "v@example.com", license=License.VIEWER)
    reply = _bulk(api, admin, pb.BULK_ACTION_UPDATE_LICENSE, [practitioner, viewer], license=V)
    assert _outcomes(reply) == [(SKIPPED, "LICENSE_DOWNGRADE_NOT_ALLOWED"), (SKIPPED, "ALREADY_IN_STATE")]
    reply = _bulk(api, admin, pb.BULK_ACTION_UPDATE_LICENSE, [practitioner, viewer], license=C)
    assert _outcomes(reply) == [(DONE, ""), (DONE, "")]
    team = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="EMEA")), metadata=admin)
    membership = pb.TeamMembership(team=team.name, role=pb.TEAM_ROLE_MEMBER)
    reply = _bulk(api, admin, pb.BULK_ACTION_ADD_TO_TEAM, [practitioner, practitioner], team_membership=membership)
    assert _outcomes(reply) == [(DONE, ""), (SKIPPED, "DUPLICATE_IN_REQUEST")]
    again = _bulk(api, admin, pb.BULK_ACTION_ADD_TO_TEAM, [practitioner], team_membership=membership)
    assert _outcomes(again) == [(SKIPPED, "ALREADY_IN_STATE")]
    got = api.users.GetUser(pb.GetUserRequest(name=f"users/{practitioner.id}"), metadata=admin)
    assert [(m.team, m.role) for m in got.team_memberships] == [(team.name, pb.TEAM_ROLE_MEMBER)]


def test_bulk_retry_with_request_id_does_not_act_twice(users_api, smtp, admin):
    api = users_api()
    user = add_user(api.db, "created@example.com", status=UserStatus.CREATED)
    request = pb.BulkUserActionRequest(
        action=pb.BULK_ACTION_SEND_INVITATION, users=[f"users/{user.id}"], request_id=str(uuid.uuid4())
    )
    first = api.users.BulkUserAction(request, metadata=admin)
    assert api.users.BulkUserAction(request, metadata=admin) == first
    smtp.wait_for("created@example.com")
    import time

    time.sleep(0.3)
    assert len(smtp.to("created@example.com")) == 1


def test_bulk_request_is_validated_whole(users_api, admin):
    api = users_api()
    failure = call_fails(api.users.BulkUserAction, pb.BulkUserActionRequest(users=["users/nope"]), metadata=admin)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and "action" in failure.field_violations
    failure = call_fails(
        api.users.BulkUserAction,
        pb.BulkUserActionRequest(action=pb.BULK_ACTION_DISABLE, users=["users/nope"]),
        metadata=admin,
    )
    assert "users[0]" in failure.field_violations


def test_upsert_creates_updates_and_reports_each_row(users_api, admin):
    api = users_api(UsersConfig(licenses=LicensePolicy({License.CONTRIBUTOR: 1})))
    add_user(api.db, "known@example.com", first_name="Old", license=License.CONTRIBUTOR)
    rows = [
        pb.UpsertUserRow(email="new@example.com", first_name="New", license=P),
        pb.UpsertUserRow(email="KNOWN@example.com", first_name="Renamed"),
        pb.UpsertUserRow(email="known@example.com", first_name="Again"),
        pb.UpsertUserRow(email="nope", license=P),
        pb.UpsertUserRow(email="parked@example.com", license=C, status=pb.USER_STATUS_CREATED_DISABLED),
        pb.UpsertUserRow(email="full@example.com", license=C),
        pb.UpsertUserRow(email="active@example.com", license=P, status=pb.USER_STATUS_ACTIVE),
        pb.UpsertUserRow(email="downgrade@example.com", license=V),
    ]
    reply = api.users.UpsertUsers(pb.UpsertUsersRequest(rows=rows), metadata=admin)
    R = pb.UpsertUserOutcome
    assert [(o.result, o.reason) for o in reply.outcomes] == [
        (R.RESULT_CREATED, ""),
        (R.RESULT_UPDATED, ""),
        (R.RESULT_FAILED, "DUPLICATE_IN_REQUEST"),
        (R.RESULT_FAILED, "EMAIL_INVALID"),
        (R.RESULT_CREATED, ""),
        (R.RESULT_FAILED, "LICENSE_EXHAUSTED"),
        (R.RESULT_FAILED, "STATUS_NOT_CREATABLE"),
        (R.RESULT_CREATED, ""),
    ]
    users = {u.email: u for u in api.users.ListUsers(pb.ListUsersRequest(), metadata=admin).users}
    assert users["known@example.com"].first_name == "Renamed"
    assert users["parked@example.com"].status == pb.USER_STATUS_CREATED_DISABLED
    assert "full@example.com" not in users and "nope" not in users
    again = api.users.UpsertUsers(
        pb.UpsertUsersRequest(rows=[pb.UpsertUserRow(email="new@example.com", first_name="New")]), metadata=admin
    )
    assert again.outcomes[0].result == R.RESULT_UNCHANGED
    refused = api.users.UpsertUsers(
        pb.UpsertUsersRequest(rows=[pb.UpsertUserRow(email="new@example.com", license=V)]), metadata=admin
    )
    assert refused.outcomes[0].reason == "LICENSE_DOWNGRADE_NOT_ALLOWED"


# --- UpsertUserRow.teams: provisioning users into teams (as members) ---

R = pb.UpsertUserOutcome


def _team(api, admin, name):
    return api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name=name)), metadata=admin)


def _upsert(api, md, *rows):
    return api.users.UpsertUsers(pb.UpsertUsersRequest(rows=list(rows)), metadata=md)


def _memberships(api, admin, user_name):
    got = api.users.GetUser(pb.GetUserRequest(name=user_name), metadata=admin)
    return {m.team: m.role for m in got.team_memberships}


def _events(api):
    with UsersUnitOfWork(api.db, write=False) as uow:
        return [(e.type, e.subject) for e in uow.events.after(0, [], 10_000)]


def test_upsert_puts_a_new_user_in_its_teams_as_member(users_api, admin):
    api = users_api()
    emea, apac = _team(api, admin, "EMEA"), _team(api, admin, "APAC")
    reply = _upsert(api, admin, pb.UpsertUserRow(email="new@example.com", license=P, teams=[emea.name, apac.name]))
    [outcome] = reply.outcomes
    assert (outcome.result, outcome.reason) == (R.RESULT_CREATED, "")
    assert _memberships(api, admin, outcome.user) == {emea.name: pb.TEAM_ROLE_MEMBER, apac.name: pb.TEAM_ROLE_MEMBER}
    members = api.teams.ListTeamMembers(pb.ListTeamMembersRequest(team=emea.name), metadata=admin).members
    assert [(m.user, m.role) for m in members] == [(outcome.user, pb.TEAM_ROLE_MEMBER)]
    # The same event as a user created without teams (adding members records none of its own).
    assert _events(api) == [("user.created", outcome.user)]


def test_upsert_adds_a_missing_membership_to_an_existing_user_as_an_update(users_api, admin):
    api = users_api()
    emea, apac, other = _team(api, admin, "EMEA"), _team(api, admin, "APAC"), _team(api, admin, "Other")
    known = add_user(api.db, "known@example.com", first_name="Kim")
    name = f"users/{known.id}"
    api.teams.AddTeamMember(pb.AddTeamMemberRequest(team=emea.name, user=name), metadata=admin)
    api.teams.AddTeamMember(pb.AddTeamMemberRequest(team=other.name, user=name), metadata=admin)
    before = _events(api)
    # Nothing but a membership changes: UPDATED, and the same events as AddTeamMember (none).
    reply = _upsert(api, admin, pb.UpsertUserRow(email="KNOWN@example.com", teams=[emea.name, apac.name, apac.name]))
    assert [(o.result, o.user) for o in reply.outcomes] == [(R.RESULT_UPDATED, name)]
    assert _memberships(api, admin, name) == {
        emea.name: pb.TEAM_ROLE_MEMBER,
        apac.name: pb.TEAM_ROLE_MEMBER,
        other.name: pb.TEAM_ROLE_MEMBER,  # a team the row does not name is not left
    }
    assert _events(api) == before
    again = _upsert(api, admin, pb.UpsertUserRow(email="known@example.com", first_name="Kim", teams=[apac.name]))
    assert again.outcomes[0].result == R.RESULT_UNCHANGED
    # A profile change and a membership in one row: one UPDATED outcome, the usual user.updated event.
    both = _upsert(api, admin, pb.UpsertUserRow(email="known@example.com", first_name="Kimberly", teams=[]))
    assert both.outcomes[0].result == R.RESULT_UPDATED
    assert _events(api) == [*before, ("user.updated", name)]


def test_upsert_leaves_a_team_admin_an_admin(users_api, admin):
    api = users_api()
    emea = _team(api, admin, "EMEA")
    lead = add_user(api.db, "lead@example.com")
    name = f"users/{lead.id}"
    api.teams.AddTeamMember(pb.AddTeamMemberRequest(team=emea.name, user=name, role=pb.TEAM_ROLE_ADMIN), metadata=admin)
    reply = _upsert(api, admin, pb.UpsertUserRow(email="lead@example.com", teams=[emea.name]))
    assert reply.outcomes[0].result == R.RESULT_UNCHANGED
    assert _memberships(api, admin, name) == {emea.name: pb.TEAM_ROLE_ADMIN}


def test_upsert_with_an_unknown_team_fails_that_row_alone_and_writes_nothing_of_it(users_api, admin):
    api = users_api()
    emea = _team(api, admin, "EMEA")
    add_user(api.db, "known@example.com", first_name="Kim")
    ghost = f"teams/{uuid.uuid4()}"
    reply = _upsert(
        api,
        admin,
        pb.UpsertUserRow(email="new@example.com", license=P, teams=[emea.name, ghost]),
        pb.UpsertUserRow(email="known@example.com", first_name="Renamed", teams=[ghost, emea.name]),
        pb.UpsertUserRow(email="other@example.com", license=P, teams=[emea.name]),
    )
    outcomes = [(o.result, o.reason) for o in reply.outcomes]
    assert outcomes == [
        (R.RESULT_FAILED, "TEAM_NOT_FOUND"),
        (R.RESULT_FAILED, "TEAM_NOT_FOUND"),
        (R.RESULT_CREATED, ""),
    ]
    assert ghost in reply.outcomes[0].description and not reply.outcomes[0].user
    users = {u.email: u for u in api.users.ListUsers(pb.ListUsersRequest(), metadata=admin).users}
    assert "new@example.com" not in users
    assert users["known@example.com"].first_name == "Kim" and not users["known@example.com"].team_memberships
    assert _memberships(api, admin, reply.outcomes[2].user) == {emea.name: pb.TEAM_ROLE_MEMBER}
    # A team name that is not a resource name is a malformed request, as a bad license is.
    malformed = call_fails(
        api.users.UpsertUsers,
        pb.UpsertUsersRequest(rows=[pb.UpsertUserRow(email="x@example.com", license=P, teams=["EMEA"])]),
        metadata=admin,
    )
    assert malformed.code == grpc.StatusCode.INVALID_ARGUMENT and "rows[0].teams[0]" in malformed.field_violations


def test_upsert_with_teams_needs_only_the_upsert_scope(users_api, admin):
    api = users_api()
    emea = _team(api, admin, "EMEA")
    known = add_user(api.db, "known@example.com")
    integration = bearer("service:sync", roles=(), scopes=["users.upsert"])
    reply = _upsert(
        api,
        integration,
        pb.UpsertUserRow(email="new@example.com", license=P, teams=[emea.name]),
        pb.UpsertUserRow(email="known@example.com", teams=[emea.name]),
    )
    assert [o.result for o in reply.outcomes] == [R.RESULT_CREATED, R.RESULT_UPDATED]
    for outcome in reply.outcomes:
        assert _memberships(api, admin, outcome.user) == {emea.name: pb.TEAM_ROLE_MEMBER}
    # The same token still may not add members any other way, nor act on users' lifecycle.
    denied = call_fails(
        api.teams.AddTeamMember,
        pb.AddTeamMemberRequest(team=emea.name, user=f"users/{known.id}", role=pb.TEAM_ROLE_ADMIN),
        metadata=integration,
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    denied = call_fails(api.users.DisableUser, pb.DisableUserRequest(name=f"users/{known.id}"), metadata=integration)
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    reader = bearer("service:reporting", roles=(), scopes=["users.read"])
    refused = call_fails(
        api.users.UpsertUsers,
        pb.UpsertUsersRequest(rows=[pb.UpsertUserRow(email="third@example.com", license=P, teams=[emea.name])]),
        metadata=reader,
    )
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
