"""TeamService: create, rename, manager, members with team roles."""

from __future__ import annotations

import grpc

from services.users.domain.model import UserStatus
from steward.users.v1 import users_pb2 as pb
from tests.errors import call_fails
from tests.seed import add_user


def test_team_lifecycle(users_api, admin):
    api = users_api()
    lead = add_user(api.db, "lead@example.com")
    team = api.teams.CreateTeam(
        pb.CreateTeamRequest(team=pb.Team(display_name="  Customer   Success ", manager=f"users/{lead.id}")),
        metadata=admin,
    )
    assert (team.display_name, team.manager, team.member_count) == ("Customer Success", f"users/{lead.id}", 0)
    dup = call_fails(
        api.teams.CreateTeam, pb.CreateTeamRequest(team=pb.Team(display_name="customer success")), metadata=admin
    )
    assert (dup.code, dup.reason) == (grpc.StatusCode.ALREADY_EXISTS, "TEAM_NAME_TAKEN")
    renamed = api.teams.UpdateTeam(
        pb.UpdateTeamRequest(
            team=pb.Team(name=team.name, display_name="CS EMEA", etag=team.etag),
            update_mask={"paths": ["display_name"]},
        ),
        metadata=admin,
    )
    assert renamed.display_name == "CS EMEA" and renamed.manager == team.manager
    stale = call_fails(
        api.teams.UpdateTeam,
        pb.UpdateTeamRequest(
            team=pb.Team(name=team.name, display_name="X", etag=team.etag), update_mask={"paths": ["display_name"]}
        ),
        metadata=admin,
    )
    assert stale.reason == "ETAG_MISMATCH"
    cleared = api.teams.UpdateTeam(
        pb.UpdateTeamRequest(team=pb.Team(name=team.name), update_mask={"paths": ["manager"]}), metadata=admin
    )
    assert cleared.manager == ""


def test_members_and_roles(users_api, admin):
    api = users_api()
    team = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="Sales")), metadata=admin)
    users = [add_user(api.db, f"m{i}@example.com") for i in range(3)]
    for user in users:
        api.teams.AddTeamMember(pb.AddTeamMemberRequest(team=team.name, user=f"users/{user.id}"), metadata=admin)
    promoted = api.teams.AddTeamMember(
        pb.AddTeamMemberRequest(team=team.name, user=f"users/{users[0].id}", role=pb.TEAM_ROLE_ADMIN), metadata=admin
    )
    assert promoted.role == pb.TEAM_ROLE_ADMIN
    members, token = [], ""
    while True:
        page = api.teams.ListTeamMembers(
            pb.ListTeamMembersRequest(team=team.name, page_size=2, page_token=token), metadata=admin
        )
        members += [(m.user, m.role) for m in page.members]
        token = page.next_page_token
        if not token:
            break
    assert sorted(members) == sorted(
        [(f"users/{users[0].id}", pb.TEAM_ROLE_ADMIN)] + [(f"users/{u.id}", pb.TEAM_ROLE_MEMBER) for u in users[1:]]
    )
    assert api.teams.GetTeam(pb.GetTeamRequest(name=team.name), metadata=admin).member_count == 3
    api.teams.RemoveTeamMember(pb.RemoveTeamMemberRequest(team=team.name, user=f"users/{users[2].id}"), metadata=admin)
    missing = call_fails(
        api.teams.RemoveTeamMember,
        pb.RemoveTeamMemberRequest(team=team.name, user=f"users/{users[2].id}"),
        metadata=admin,
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND")
    listed = api.teams.ListTeams(pb.ListTeamsRequest(), metadata=admin)
    assert [(t.display_name, t.member_count) for t in listed.teams] == [("Sales", 2)]


def test_deleted_users_leave_their_teams_and_cannot_join(users_api, admin):
    api = users_api()
    team = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="Ops")), metadata=admin)
    user = add_user(api.db, "u@example.com")
    api.teams.AddTeamMember(pb.AddTeamMemberRequest(team=team.name, user=f"users/{user.id}"), metadata=admin)
    api.users.DeleteUser(pb.DeleteUserRequest(name=f"users/{user.id}"), metadata=admin)
    assert api.teams.GetTeam(pb.GetTeamRequest(name=team.name), metadata=admin).member_count == 0
    gone = add_user(api.db, "gone@example.com", status=UserStatus.DELETED)
    failure = call_fails(
        api.teams.AddTeamMember, pb.AddTeamMemberRequest(team=team.name, user=f"users/{gone.id}"), metadata=admin
    )
    assert failure.reason == "USER_NOT_FOUND"


def test_invite_into_unknown_team_is_refused(users_api, admin):
    api = users_api()
    failure = call_fails(
        api.users.InviteUsers,
        pb.InviteUsersRequest(
            emails=["a@example.com"],
            license=pb.LICENSE_VIEWER,
            team_memberships=[pb.TeamMembership(team="teams/0b8f5a4e-9f7c-4d59-9a53-2a3c1f3e8d11")],
        ),
        metadata=admin,
    )
    assert failure.violation_reasons == {"team_memberships[0].team": "TEAM_NOT_FOUND"}


def test_deleting_a_team_keeps_its_members_and_checks_etag_rights_and_retries(users_api, admin):
    import uuid

    from tests.conftest import bearer

    api = users_api()
    ann = add_user(api.db, "ann@example.com")
    team = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="EMEA")), metadata=admin)
    other = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="APAC")), metadata=admin)
    for joined in (team, other):
        api.teams.AddTeamMember(pb.AddTeamMemberRequest(team=joined.name, user=f"users/{ann.id}"), metadata=admin)
    stale = call_fails(api.teams.DeleteTeam, pb.DeleteTeamRequest(name=team.name, etag='"old"'), metadata=admin)
    assert (stale.code, stale.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    viewer = add_user(api.db, "viewer@example.com")
    denied = call_fails(api.teams.DeleteTeam, pb.DeleteTeamRequest(name=team.name), metadata=bearer(str(viewer.id), ()))
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    current = api.teams.GetTeam(pb.GetTeamRequest(name=team.name), metadata=admin)
    request = pb.DeleteTeamRequest(name=team.name, etag=current.etag, request_id=str(uuid.uuid4()))
    api.teams.DeleteTeam(request, metadata=admin)
    api.teams.DeleteTeam(request, metadata=admin)  # a retry answers as the first call did
    gone = call_fails(api.teams.GetTeam, pb.GetTeamRequest(name=team.name), metadata=admin)
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "TEAM_NOT_FOUND")
    again = call_fails(api.teams.DeleteTeam, pb.DeleteTeamRequest(name=team.name), metadata=admin)
    assert again.code == grpc.StatusCode.NOT_FOUND
    user = api.users.GetUser(pb.GetUserRequest(name=f"users/{ann.id}"), metadata=admin)
    assert (user.status, [m.team for m in user.team_memberships]) == (pb.USER_STATUS_ACTIVE, [other.name])
