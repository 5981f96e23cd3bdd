"""AssignmentService: roles, one holder per role per account, sources, history, as-of teams."""

from __future__ import annotations

import itertools

import grpc
import pytest

from services.users.domain.model import License, UserStatus
from steward.users.v1 import assignments_pb2 as pb
from tests.errors import call_fails
from tests.seed import add_user

MANUAL = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_MANUAL)
INTEGRATION = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="jobs/etm-1")
_accounts = itertools.count()


def acct() -> str:
    return f"0015g00000ACC{next(_accounts):05d}"


def by_id(user) -> pb.UserRef:
    return pb.UserRef(user=f"users/{user.id}")


def set_(api, md, account, role, ref, source=MANUAL):
    return api.assignments.SetAssignment(
        pb.SetAssignmentRequest(account_id=account, role=role, user=ref, source=source), metadata=md
    )


def history(api, md, account):
    return list(
        api.assignments.ListAssignmentHistory(pb.ListAssignmentHistoryRequest(account_id=account), metadata=md).changes
    )


def test_builtin_roles_and_their_attributes(users_api, admin):
    api = users_api()
    roles = {r.key: r for r in api.assignments.ListRoles(pb.ListRolesRequest(), metadata=admin).roles}
    assert set(roles) == {"success_manager", "sales_manager"}
    assert roles["sales_manager"].attribute == "sales_manager___tid" and roles["sales_manager"].builtin
    assert roles["success_manager"].display_name == "Success Manager"
    refused = call_fails(api.assignments.DeleteRole, pb.DeleteRoleRequest(name="roles/success_manager"), metadata=admin)
    assert refused.reason == "ROLE_BUILTIN"


def test_custom_roles_are_validated_and_deleted_only_when_unused_or_forced(users_api, admin):
    api = users_api()
    bad = call_fails(
        api.assignments.CreateRole,
        pb.CreateRoleRequest(role=pb.Role(key="Onboarding Mgr", display_name="x")),
        metadata=admin,
    )
    assert bad.violation_reasons == {"role.key": "ROLE_KEY_INVALID"}
    role = api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(
                key="onboarding_manager",
                display_name="Onboarding Manager",
                source=pb.ROLE_SOURCE_EDITABLE,
                empty_value=pb.EMPTY_VALUE_CLEAR,
            )
        ),
        metadata=admin,
    )
    assert role.attribute == "onboarding_manager___tid" and role.empty_value == pb.EMPTY_VALUE_CLEAR
    again = call_fails(
        api.assignments.CreateRole,
        pb.CreateRoleRequest(role=pb.Role(key="onboarding_manager", display_name="Again")),
        metadata=admin,
    )
    assert (again.code, again.reason) == (grpc.StatusCode.ALREADY_EXISTS, "ROLE_EXISTS")
    renamed = api.assignments.UpdateRole(
        pb.UpdateRoleRequest(
            role=pb.Role(name=role.name, display_name="Onboarding Lead", etag=role.etag),
            update_mask={"paths": ["display_name"]},
        ),
        metadata=admin,
    )
    assert renamed.display_name == "Onboarding Lead"
    ada = add_user(api.db, "ada@example.com")
    account = acct()
    set_(api, admin, account, role.name, by_id(ada))
    in_use = call_fails(api.assignments.DeleteRole, pb.DeleteRoleRequest(name=role.name), metadata=admin)
    assert (in_use.code, in_use.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLE_IN_USE")
    forced = api.assignments.DeleteRole(pb.DeleteRoleRequest(name=role.name, force=True), metadata=admin)
    assert forced.cleared_assignments == 1
    cleared = history(api, admin, account)[0]
    assert (cleared.user, cleared.previous_user) == ("", f"users/{ada.id}")
    assert (
        api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=admin).assignments == []
    )


def test_set_replace_clear_with_history_and_team_attributes(users_api, admin):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "Bob@Example.com")
    account = acct()
    first = set_(api, admin, account, "roles/success_manager", by_id(ada))
    assert (first.user, first.source) == (f"users/{ada.id}", pb.ASSIGNMENT_SOURCE_MANUAL)
    set_(api, admin, account, "roles/success_manager", by_id(ada))  # the same again: a no-op
    assert len(history(api, admin, account)) == 1
    set_(api, admin, account, "roles/success_manager", pb.UserRef(email="BOB@example.com"))
    set_(api, admin, account, "roles/sales_manager", by_id(ada))
    team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=admin)
    assert dict(team.attributes) == {
        "success_manager___tid": f"users/{bob.id}",
        "sales_manager___tid": f"users/{ada.id}",
    }
    changes = history(api, admin, account)
    assert [(c.role, c.user, c.previous_user) for c in changes] == [
        ("roles/sales_manager", f"users/{ada.id}", ""),
        ("roles/success_manager", f"users/{bob.id}", f"users/{ada.id}"),
        ("roles/success_manager", f"users/{ada.id}", ""),
    ]
    cleared = api.assignments.ClearAssignment(
        pb.ClearAssignmentRequest(account_id=account, role="roles/success_manager", source=MANUAL), metadata=admin
    )
    assert cleared.previous_user == f"users/{bob.id}"
    again = api.assignments.ClearAssignment(
        pb.ClearAssignmentRequest(account_id=account, role="roles/success_manager", source=MANUAL), metadata=admin
    )
    assert again.previous_user == "" and len(history(api, admin, account)) == 4


def test_team_as_of_a_past_moment(users_api, admin):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    account = acct()
    set_(api, admin, account, "roles/success_manager", by_id(ada))
    set_(api, admin, account, "roles/success_manager", by_id(bob))
    second, first = history(api, admin, account)

    def holder(as_of):
        team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account, as_of=as_of), metadata=admin)
        return dict(team.attributes).get("success_manager___tid", "")

    assert holder(first.change_time) == f"users/{ada.id}"
    assert holder(second.change_time) == f"users/{bob.id}"
    before = type(first.change_time)()
    before.FromNanoseconds(first.change_time.ToNanoseconds() - 1_000)
    assert holder(before) == ""


def test_integration_only_roles_refuse_manual_and_bulk(users_api, admin):
    api = users_api()
    api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(key="territory_owner", display_name="Territory Owner", source=pb.ROLE_SOURCE_INTEGRATION_ONLY)
        ),
        metadata=admin,
    )
    ada = add_user(api.db, "ada@example.com")
    account = acct()
    for source in (pb.ASSIGNMENT_SOURCE_MANUAL, pb.ASSIGNMENT_SOURCE_BULK):
        failure = call_fails(
            api.assignments.SetAssignment,
            pb.SetAssignmentRequest(
                account_id=account, role="roles/territory_owner", user=by_id(ada), source=pb.WriteSource(source=source)
            ),
            metadata=admin,
        )
        assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLE_INTEGRATION_ONLY")
    set_(api, admin, account, "roles/territory_owner", by_id(ada), INTEGRATION)
    refused = call_fails(
        api.assignments.ClearAssignment,
        pb.ClearAssignmentRequest(account_id=account, role="roles/territory_owner", source=MANUAL),
        metadata=admin,
    )
    assert refused.reason == "ROLE_INTEGRATION_ONLY"


def test_full_names_shared_by_two_users_are_refused_with_candidates(users_api, admin):
    api = users_api()
    one = add_user(api.db, "jsmith@example.com", first_name="John", last_name="Smith")
    two = add_user(api.db, "john.smith@example.com", first_name="John", last_name="Smith")
    unique = add_user(api.db, "ada@example.com", first_name="Ada", last_name="Lovelace")
    failure = call_fails(
        api.assignments.SetAssignment,
        pb.SetAssignmentRequest(
            account_id=acct(), role="roles/sales_manager", user=pb.UserRef(full_name="john  SMITH"), source=INTEGRATION
        ),
        metadata=admin,
    )
    assert (failure.code, failure.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "USER_AMBIGUOUS")
    assert one.id in failure.message and two.id in failure.message
    got = set_(api, admin, acct(), "roles/sales_manager", pb.UserRef(full_name="Ada Lovelace"), INTEGRATION)
    assert got.user == f"users/{unique.id}"


SOURCES = {
    "MANUAL": pb.ASSIGNMENT_SOURCE_MANUAL,
    "BULK": pb.ASSIGNMENT_SOURCE_BULK,
    "INTEGRATION": pb.ASSIGNMENT_SOURCE_INTEGRATION,
    "PLAY": pb.ASSIGNMENT_SOURCE_PLAY,
}


def _expected(source: str, status: UserStatus, license: License, in_team: bool) -> bool:
    """The product's rules, written out independently of the implementation."""
    if source in ("MANUAL", "BULK"):
        return status is UserStatus.ACTIVE and license in (License.PRACTITIONER, License.CONTRIBUTOR)
    if source == "INTEGRATION":
        return status in (UserStatus.CREATED, UserStatus.ACTIVE)
    return status is UserStatus.ACTIVE and in_team


def test_eligibility_matrix(users_api, admin):
    from steward.users.v1 import users_pb2

    api = users_api()
    team = api.teams.CreateTeam(
        users_pb2.CreateTeamRequest(team=users_pb2.Team(display_name="Play team")), metadata=admin
    )
    wrong = []
    counter = itertools.count()
    for source, status, license, in_team in itertools.product(SOURCES, UserStatus, License, (True, False)):
        user = add_user(api.db, f"m{next(counter)}@example.com", status=status, license=license)
        if in_team and status is not UserStatus.DELETED:
            api.teams.AddTeamMember(
                users_pb2.AddTeamMemberRequest(team=team.name, user=f"users/{user.id}"), metadata=admin
            )
        write = pb.WriteSource(
            source=SOURCES[source],
            play_team=team.name if source == "PLAY" else "",
            source_ref="plays/x" if source == "PLAY" else "",
        )
        try:
            set_(api, admin, acct(), "roles/success_manager", by_id(user), write)
            allowed = True
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
            allowed = False
        if allowed != _expected(source, status, license, in_team):
            wrong.append(f"{source} {status.value} {license.value} in_team={in_team}: allowed={allowed}")
    assert wrong == []


def test_batch_rows_each_get_an_outcome(users_api, admin):
    api = users_api()
    api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(key="onboarding_manager", display_name="Onboarding", empty_value=pb.EMPTY_VALUE_CLEAR)
        ),
        metadata=admin,
    )
    ada = add_user(api.db, "ada@example.com", first_name="Ada", last_name="L")
    add_user(api.db, "j1@example.com", first_name="Jo", last_name="Doe")
    add_user(api.db, "j2@example.com", first_name="Jo", last_name="Doe")
    a1, a2 = acct(), acct()
    set_(api, admin, a1, "roles/onboarding_manager", by_id(ada), INTEGRATION)
    set_(api, admin, a2, "roles/success_manager", by_id(ada), INTEGRATION)
    rows = [
        pb.AssignmentRow(account_id=a1, role="roles/sales_manager", user=pb.UserRef(email="ada@example.com")),
        pb.AssignmentRow(account_id=a1, role="roles/sales_manager", user=pb.UserRef(full_name="Ada L")),
        pb.AssignmentRow(account_id=a1, role="roles/nope", user=by_id(ada)),
        pb.AssignmentRow(account_id=a1, role="roles/success_manager", user=pb.UserRef(email="who@example.com")),
        pb.AssignmentRow(account_id=a1, role="roles/success_manager", user=pb.UserRef(full_name="Jo Doe")),
        pb.AssignmentRow(account_id=a1, role="roles/onboarding_manager"),  # empty value, role says CLEAR
        pb.AssignmentRow(account_id=a2, role="roles/success_manager"),  # empty value, role says KEEP_EXISTING
        pb.AssignmentRow(account_id="", role="roles/success_manager", user=by_id(ada)),
    ]
    reply = api.assignments.BatchSetAssignments(
        pb.BatchSetAssignmentsRequest(rows=rows, source=INTEGRATION), metadata=admin
    )
    Outcome = pb.AssignmentRowOutcome
    assert [(o.result, o.reason) for o in reply.outcomes] == [
        (Outcome.RESULT_SET, ""),
        (Outcome.RESULT_UNCHANGED, ""),
        (Outcome.RESULT_FAILED, "ROLE_NOT_FOUND"),
        (Outcome.RESULT_FAILED, "USER_NOT_FOUND"),
        (Outcome.RESULT_FAILED, "USER_AMBIGUOUS"),
        (Outcome.RESULT_CLEARED, ""),
        (Outcome.RESULT_UNCHANGED, ""),
        (Outcome.RESULT_FAILED, "INVALID_REQUEST"),
    ]
    assert (reply.changed_count, reply.failed_count) == (2, 4)
    team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=a2), metadata=admin)
    assert dict(team.attributes) == {"success_manager___tid": f"users/{ada.id}"}


def test_list_assignments_by_user_pages_through_their_accounts(users_api, admin):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    mine = sorted(acct() for _ in range(5))
    for account in mine:
        set_(api, admin, account, "roles/success_manager", by_id(ada))
    set_(api, admin, acct(), "roles/success_manager", by_id(bob))
    seen, token = [], ""
    while True:
        page = api.assignments.ListAssignments(
            pb.ListAssignmentsRequest(
                user=f"users/{ada.id}", role="roles/success_manager", page_size=2, page_token=token
            ),
            metadata=admin,
        )
        seen += [a.account_id for a in page.assignments]
        token = page.next_page_token
        if not token:
            break
    assert seen == mine


def test_who_may_write_which_source(users_api, admin):
    from tests.conftest import bearer

    api = users_api()
    holder = add_user(api.db, "holder@example.com")
    viewer = add_user(api.db, "viewer@example.com", license=License.VIEWER)
    contributor = add_user(api.db, "contrib@example.com", license=License.CONTRIBUTOR)
    sync = bearer("service:sync", roles=(), scopes=["assignments.write"])
    set_(api, bearer(contributor.id, roles=()), acct(), "roles/success_manager", by_id(holder))
    set_(api, sync, acct(), "roles/success_manager", by_id(holder), INTEGRATION)
    for md, source in (
        (bearer(viewer.id, roles=()), MANUAL),
        (sync, MANUAL),
        (bearer(contributor.id, roles=()), INTEGRATION),
    ):
        failure = call_fails(
            api.assignments.SetAssignment,
            pb.SetAssignmentRequest(account_id=acct(), role="roles/success_manager", user=by_id(holder), source=source),
            metadata=md,
        )
        assert failure.code == grpc.StatusCode.PERMISSION_DENIED
    reserved = call_fails(
        api.assignments.SetAssignment,
        pb.SetAssignmentRequest(
            account_id=acct(),
            role="roles/success_manager",
            user=by_id(holder),
            source=pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_REASSIGNMENT),
        ),
        metadata=admin,
    )
    assert (reserved.code, reserved.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SOURCE_RESERVED")


@pytest.mark.parametrize("request_kind", ["no user", "no source", "bad user name"])
def test_requests_are_validated(users_api, admin, request_kind):
    api = users_api()
    request = pb.SetAssignmentRequest(
        account_id="A1", role="roles/success_manager", user=pb.UserRef(email="a@example.com"), source=MANUAL
    )
    if request_kind == "no user":
        request.ClearField("user")
    elif request_kind == "no source":
        request.ClearField("source")
    else:
        request.user.user = "people/1"
    assert call_fails(api.assignments.SetAssignment, request, metadata=admin).code == grpc.StatusCode.INVALID_ARGUMENT


def test_batch_get_reads_the_holders_of_many_slots_and_checks_every_key(users_api, admin):
    api = users_api()
    ann = add_user(api.db, "ann@example.com")
    held, free = acct(), acct()
    set_(api, admin, held, "roles/success_manager", by_id(ann), INTEGRATION)
    reply = api.assignments.BatchGetAssignments(
        pb.BatchGetAssignmentsRequest(
            keys=[
                pb.AssignmentKey(account_id=free, role="roles/success_manager"),  # nobody holds it
                pb.AssignmentKey(account_id=held, role="roles/success_manager"),
                pb.AssignmentKey(account_id=held, role="roles/sales_manager"),
                pb.AssignmentKey(account_id=held, role="roles/no_such_role"),  # nobody can
            ]
        ),
        metadata=admin,
    )
    assert [(a.account_id, a.role, a.user, a.source, a.source_ref) for a in reply.assignments] == [
        (held, "roles/success_manager", f"users/{ann.id}", pb.ASSIGNMENT_SOURCE_INTEGRATION, "jobs/etm-1")
    ]

    empty = call_fails(api.assignments.BatchGetAssignments, pb.BatchGetAssignmentsRequest(), metadata=admin)
    assert (empty.code, empty.violation_reasons) == (grpc.StatusCode.INVALID_ARGUMENT, {"keys": "REQUIRED"})
    key = pb.AssignmentKey(account_id=held, role="roles/success_manager")
    too_many = call_fails(
        api.assignments.BatchGetAssignments, pb.BatchGetAssignmentsRequest(keys=[key] * 10_001), metadata=admin
    )
    assert (too_many.code, too_many.violation_reasons) == (grpc.StatusCode.INVALID_ARGUMENT, {"keys": "TOO_MANY"})
    bad = call_fails(
        api.assignments.BatchGetAssignments,
        pb.BatchGetAssignmentsRequest(
            keys=[key, pb.AssignmentKey(account_id="", role="success_manager"), pb.AssignmentKey(account_id="a\x01")]
        ),
        metadata=admin,
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(bad.field_violations) == {"keys[1].account_id", "keys[2].account_id", "keys[2].role"}


def test_a_batch_over_the_limit_is_refused_whole(users_api, admin):
    api = users_api()
    ann = add_user(api.db, "ann@example.com")
    account = acct()
    row = pb.AssignmentRow(account_id=account, role="roles/success_manager", user=by_id(ann))
    too_many = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(rows=[row] * 10_001, source=INTEGRATION),
        metadata=admin,
    )
    assert (too_many.code, too_many.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TOO_MANY_ROWS")
    team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=admin)
    assert list(team.assignments) == [] and history(api, admin, account) == []


def test_batch_rows_travel_intact_whatever_characters_their_account_ids_hold(users_api, admin):
    """A batch reaches the database as one JSON parameter: quotes, backslashes, non-ASCII and
    JSON look-alikes in an account id must come back exactly as sent."""
    api = users_api()
    ann = add_user(api.db, "ann@example.com")
    accounts = ['Ac"me\\1', "Société Générale ✓", "[1, 2]", "null", "  spaced  ", "x" * 255, "😀-emoji"]
    reply = api.assignments.BatchSetAssignments(
        pb.BatchSetAssignmentsRequest(
            rows=[pb.AssignmentRow(account_id=a, role="roles/success_manager", user=by_id(ann)) for a in accounts],
            source=INTEGRATION,
        ),
        metadata=admin,
    )
    assert [o.result for o in reply.outcomes] == [pb.AssignmentRowOutcome.RESULT_SET] * len(accounts)
    for account in accounts:
        team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=admin)
        assert [(a.account_id, a.user) for a in team.assignments] == [(account, f"users/{ann.id}")]
        [change] = history(api, admin, account)
        assert (change.account_id, change.user, change.previous_user) == (account, f"users/{ann.id}", "")
    got = api.assignments.BatchGetAssignments(
        pb.BatchGetAssignmentsRequest(
            keys=[pb.AssignmentKey(account_id=a, role="roles/success_manager") for a in accounts]
        ),
        metadata=admin,
    )
    assert sorted(a.account_id for a in got.assignments) == sorted(accounts)
