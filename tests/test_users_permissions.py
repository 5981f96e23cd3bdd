"""The permission matrix, role by operation, through the real services."""

from __future__ import annotations

import itertools

import grpc

from services.users.domain.model import UserStatus
from steward.users.v1 import users_pb2 as pb
from tests.conftest import bearer
from tests.seed import add_user

P = pb.LICENSE_PRACTITIONER
_counter = itertools.count()


def _fresh_email() -> str:
    return f"target{next(_counter)}@example.com"


def test_permission_matrix(users_api, admin):
    api = users_api()
    db = api.db
    team_t = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="T")), metadata=admin)
    team_u = api.teams.CreateTeam(pb.CreateTeamRequest(team=pb.Team(display_name="U")), metadata=admin)
    actors = {
        "global_admin": add_user(db, "ga@example.com", global_admin=True),
        "user_manager": add_user(db, "um@example.com", user_management=True),
        "team_admin": add_user(db, "ta@example.com"),
        "plain_user": add_user(db, "pu@example.com"),
        "disabled_user": add_user(db, "du@example.com", status=UserStatus.DISABLED, user_management=True),
    }
    api.teams.AddTeamMember(
        pb.AddTeamMemberRequest(team=team_t.name, user=f"users/{actors['team_admin'].id}", role=pb.TEAM_ROLE_ADMIN),
        metadata=admin,
    )
    tokens = {name: bearer(user.id, roles=()) for name, user in actors.items()}
    tokens["service_read"] = bearer("service:rules", roles=(), scopes=["users.read"])
    tokens["service_upsert"] = bearer("service:sync", roles=(), scopes=["users.upsert"])

    def target():
        return add_user(db, _fresh_email())

    def invite(md, **kw):
        api.users.InviteUsers(
            pb.InviteUsersRequest(emails=[_fresh_email()], license=P, send_invitation=False, **kw), metadata=md
        )

    def update(md, user, path, **fields):
        api.users.UpdateUser(
            pb.UpdateUserRequest(user=pb.User(name=f"users/{user.id}", **fields), update_mask={"paths": [path]}),
            metadata=md,
        )

    member_t = pb.TeamMembership(team=team_t.name, role=pb.TEAM_ROLE_MEMBER)
    member_u = pb.TeamMembership(team=team_u.name, role=pb.TEAM_ROLE_MEMBER)
    operations = {
        "read directory": lambda md, me: api.users.ListUsers(pb.ListUsersRequest(), metadata=md),
        "invite (no team)": lambda md, me: invite(md),
        "invite into own team": lambda md, me: invite(md, team_memberships=[member_t]),
        "invite into other team": lambda md, me: invite(md, team_memberships=[member_u]),
        "invite a global admin": lambda md, me: invite(md, global_admin=True),
        "edit own name": lambda md, me: update(md, me, "first_name", first_name="Me"),
        "edit someone's name": lambda md, me: update(md, target(), "first_name", first_name="You"),
        "change someone's license": lambda md, me: update(md, target(), "license", license=pb.LICENSE_CONTRIBUTOR),
        "grant user management": lambda md, me: update(md, target(), "user_management", user_management=True),
        "grant global admin": lambda md, me: update(md, target(), "global_admin", global_admin=True),
        "disable someone": lambda md, me: api.users.DisableUser(
            pb.DisableUserRequest(name=f"users/{target().id}"), metadata=md
        ),
        "bulk disable": lambda md, me: api.users.BulkUserAction(
            pb.BulkUserActionRequest(action=pb.BULK_ACTION_DISABLE, users=[f"users/{target().id}"]), metadata=md
        ),
        "upsert users": lambda md, me: api.users.UpsertUsers(
            pb.UpsertUsersRequest(rows=[pb.UpsertUserRow(email=_fresh_email(), license=P)]), metadata=md
        ),
        "create team": lambda md, me: api.teams.CreateTeam(
            pb.CreateTeamRequest(team=pb.Team(display_name=f"Team {next(_counter)}")), metadata=md
        ),
        "add member to own team": lambda md, me: api.teams.AddTeamMember(
            pb.AddTeamMemberRequest(team=team_t.name, user=f"users/{target().id}"), metadata=md
        ),
        "add member to other team": lambda md, me: api.teams.AddTeamMember(
            pb.AddTeamMemberRequest(team=team_u.name, user=f"users/{target().id}"), metadata=md
        ),
    }
    manager_ops = set(operations) - {"grant global admin", "invite a global admin"}
    allowed = {
        "global_admin": set(operations),
        "user_manager": manager_ops,
        "team_admin": {"read directory", "invite into own team", "edit own name", "add member to own team"},
        "plain_user": {"read directory", "edit own name"},
        "disabled_user": set(),
        "service_read": {"read directory"},
        "service_upsert": {"read directory", "upsert users"},  # integrations look users up before writing
    }
    me_of = {name: actors.get(name) or target() for name in allowed}
    wrong = []
    for (role, md), (operation, call) in itertools.product(tokens.items(), operations.items()):
        me = me_of[role]
        try:
            call(md, me)
            outcome = "allowed"
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                raise AssertionError(f"{role} / {operation}: {error.code()} {error.details()}") from error
            outcome = "denied"
        expected = "allowed" if operation in allowed[role] else "denied"
        if outcome != expected:
            wrong.append(f"{role} / {operation}: {outcome}, expected {expected}")
    assert wrong == []


def test_a_revoked_permission_takes_effect_at_once(users_api, admin):
    """Permissions come from the directory, not the token: the same token loses its power."""
    api = users_api()
    manager = add_user(api.db, "um@example.com", user_management=True)
    token = bearer(manager.id, roles=())
    api.users.InviteUsers(
        pb.InviteUsersRequest(emails=["x@example.com"], license=P, send_invitation=False), metadata=token
    )
    api.users.UpdateUser(
        pb.UpdateUserRequest(
            user=pb.User(name=f"users/{manager.id}", user_management=False), update_mask={"paths": ["user_management"]}
        ),
        metadata=admin,
    )
    try:
        api.users.InviteUsers(
            pb.InviteUsersRequest(emails=["y@example.com"], license=P, send_invitation=False), metadata=token
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    else:
        raise AssertionError("a revoked user manager could still invite")


def test_token_of_an_unknown_user_is_unauthenticated(users_api):
    api = users_api()
    try:
        api.users.ListUsers(pb.ListUsersRequest(), metadata=bearer("0b8f5a4e-9f7c-4d59-9a53-2a3c1f3e8d11", roles=()))
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    else:
        raise AssertionError("a token for a user that does not exist was accepted")
