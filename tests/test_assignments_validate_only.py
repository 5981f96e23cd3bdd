"""BatchSetAssignments with validate_only (AIP-163): the outcomes the real call would give, row by
row, and nothing written: no assignment, history, event, outbox row or idempotency record."""

from __future__ import annotations

import uuid

import grpc
from sqlalchemy import select

from services.users.adapters.orm import UsersBase
from services.users.domain.model import License, UserStatus
from steward.users.v1 import assignments_pb2 as pb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user
from tests.test_assignment_rows_api import acct, assignment_events, history

R = pb.AssignmentRowOutcome
CSM = "roles/success_manager"
CLEARING = "roles/validated_clearing"
INTEGRATION = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="jobs/etm-1")
MANUAL = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_MANUAL)
ADMIN = bearer()


def by_id(user) -> pb.UserRef:
    return pb.UserRef(user=f"users/{user.id}")


def row(
    account: str, user: pb.UserRef | None, *, role: str = CSM, source=None, request_id: str = ""
) -> pb.AssignmentRow:
    return pb.AssignmentRow(account_id=account, role=role, user=user, source=source, request_id=request_id)


def batch(api, rows, *, validate_only: bool = False, request_id: str = "") -> pb.BatchSetAssignmentsResponse:
    request = pb.BatchSetAssignmentsRequest(
        rows=rows, source=INTEGRATION, validate_only=validate_only, request_id=request_id
    )
    return api.assignments.BatchSetAssignments(request, metadata=ADMIN)


def holders(api, accounts) -> dict[str, str]:
    reply = api.assignments.ListAssignments(pb.ListAssignmentsRequest(page_size=1000), metadata=ADMIN)
    return {a.account_id: a.user for a in reply.assignments if a.account_id in accounts}


def database(api) -> dict[str, list[str]]:
    """Every row of every table of the users service."""
    with api.db.engine.connect() as conn:
        return {
            t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t))) for t in UsersBase.metadata.sorted_tables
        }


def test_validate_only_answers_each_row_as_the_real_call_then_does_and_writes_nothing(users_api):
    api = users_api()
    api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(key=CLEARING.removeprefix("roles/"), display_name="Clearing", empty_value=pb.EMPTY_VALUE_CLEAR)
        ),
        metadata=ADMIN,
    )
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    viewer = add_user(api.db, "vic@example.com", license=License.VIEWER)
    invited = add_user(api.db, "cid@example.com", status=UserStatus.CREATED)
    disabled = add_user(api.db, "dis@example.com", status=UserStatus.DISABLED)
    created_disabled = add_user(api.db, "cdis@example.com", status=UserStatus.CREATED_DISABLED)
    deleted = add_user(api.db, "gone@example.com", status=UserStatus.DELETED)
    accounts = [acct() for _ in range(14)]
    a = dict(enumerate(accounts))
    batch(api, [row(a[1], by_id(bob)), row(a[2], by_id(ada)), row(a[12], by_id(bob), role=CLEARING)])
    rows = [
        row(a[0], by_id(ada)),  # SET on a free slot
        row(a[1], by_id(ada)),  # SET, replacing bob
        row(a[2], by_id(ada)),  # UNCHANGED: ada holds it
        row(a[3], by_id(invited)),  # INTEGRATION writes may name a CREATED user
        row(a[4], by_id(invited), source=MANUAL),  # USER_NOT_ACTIVE
        row(a[5], by_id(disabled)),  # USER_NOT_ELIGIBLE
        row(a[6], by_id(created_disabled)),  # USER_NOT_ELIGIBLE
        row(a[7], by_id(deleted)),  # USER_NOT_ELIGIBLE
        row(a[8], pb.UserRef(email="gone@example.com")),  # USER_NOT_FOUND: not listed
        row(a[9], pb.UserRef(user=f"users/{uuid.uuid4()}")),  # USER_NOT_FOUND
        row(a[10], by_id(ada), role="roles/no_such_role"),  # ROLE_NOT_FOUND
        row(a[11], by_id(viewer), source=MANUAL),  # LICENSE_NOT_ELIGIBLE
        row(a[12], None, role=CLEARING),  # CLEARED: the role's empty value clears
        row(a[0], by_id(bob)),  # the slot of row 0 again: SET, replacing ada
        row(a[13], pb.UserRef(full_name="Ada Lovelace")),  # USER_AMBIGUOUS: every seeded user has that name
    ]
    before = holders(api, accounts)
    events_before = assignment_events(api)
    history_before = {account: history(api, account) for account in accounts}
    tables_before = database(api)

    checked = batch(api, rows, validate_only=True)

    assert database(api) == tables_before
    assert holders(api, accounts) == before
    assert {account: history(api, account) for account in accounts} == history_before
    assert assignment_events(api) == events_before
    real = batch(api, rows)
    assert list(checked.outcomes) == list(real.outcomes)
    assert (checked.changed_count, checked.failed_count) == (real.changed_count, real.failed_count)
    assert [(o.result, o.reason) for o in real.outcomes] == [
        (R.RESULT_SET, ""),
        (R.RESULT_SET, ""),
        (R.RESULT_UNCHANGED, ""),
        (R.RESULT_SET, ""),
        (R.RESULT_FAILED, "USER_NOT_ACTIVE"),
        (R.RESULT_FAILED, "USER_NOT_ELIGIBLE"),
        (R.RESULT_FAILED, "USER_NOT_ELIGIBLE"),
        (R.RESULT_FAILED, "USER_NOT_ELIGIBLE"),
        (R.RESULT_FAILED, "USER_NOT_FOUND"),
        (R.RESULT_FAILED, "USER_NOT_FOUND"),
        (R.RESULT_FAILED, "ROLE_NOT_FOUND"),
        (R.RESULT_FAILED, "LICENSE_NOT_ELIGIBLE"),
        (R.RESULT_CLEARED, ""),
        (R.RESULT_SET, ""),
        (R.RESULT_FAILED, "USER_AMBIGUOUS"),
    ]
    assert real.outcomes[1].previous_user == f"users/{bob.id}"
    assert real.outcomes[13].previous_user == f"users/{ada.id}"
    assert holders(api, accounts) != before  # the real call did write


def test_a_validate_only_call_leaves_its_request_ids_to_the_real_call(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    a0, a1 = acct(), acct()
    call_id, row_id = str(uuid.uuid4()), str(uuid.uuid4())
    rows = [row(a0, by_id(ada), request_id=row_id), row(a1, by_id(bob))]
    tables_before = database(api)

    checked = batch(api, rows, validate_only=True, request_id=call_id)

    assert database(api) == tables_before  # no call record, no row record
    assert [o.result for o in checked.outcomes] == [R.RESULT_SET, R.RESULT_SET]
    real = batch(api, rows, request_id=call_id)
    assert real == checked
    assert holders(api, {a0, a1}) == {a0: f"users/{ada.id}", a1: f"users/{bob.id}"}
    # The id is the real call's now: validate_only answers as that call's retry would.
    assert batch(api, rows, validate_only=True, request_id=call_id) == real
    reused = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(rows=rows[:1], source=INTEGRATION, validate_only=True, request_id=call_id),
        metadata=ADMIN,
    )
    assert (reused.code, reused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")


def test_a_validated_row_request_id_is_still_applied_by_the_real_call(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    account, row_id = acct(), str(uuid.uuid4())
    batch(api, [row(account, by_id(ada), request_id=row_id)], validate_only=True)
    batch(api, [row(account, by_id(bob))])

    # Had the check recorded the row, this would answer from the record and leave bob there.
    real = batch(api, [row(account, by_id(ada), request_id=row_id)])

    assert (real.outcomes[0].result, real.outcomes[0].previous_user) == (R.RESULT_SET, f"users/{bob.id}")
    assert holders(api, {account}) == {account: f"users/{ada.id}"}
    # Applied now: a check of the same row answers the recorded outcome, as a real retry does.
    assert batch(api, [row(account, by_id(ada), request_id=row_id)], validate_only=True) == real


def test_validate_only_refuses_the_whole_call_as_the_real_call_does(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    reader = bearer("service:reader", roles=(), scopes=["users.read"])
    for validate_only in (True, False):
        denied = call_fails(
            api.assignments.BatchSetAssignments,
            pb.BatchSetAssignmentsRequest(
                rows=[row(acct(), by_id(ada))], source=INTEGRATION, validate_only=validate_only
            ),
            metadata=reader,
        )
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED
        reserved = call_fails(
            api.assignments.BatchSetAssignments,
            pb.BatchSetAssignmentsRequest(
                rows=[row(acct(), by_id(ada))],
                source=pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_REASSIGNMENT),
                validate_only=validate_only,
            ),
            metadata=ADMIN,
        )
        assert (reserved.code, reserved.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SOURCE_RESERVED")
