"""What the sync service (ETM ingestion, removals = MIRROR) needs from the users service:
ListAssignments by the source that wrote the current holder, and BatchClearAssignments that clears
only what a job itself wrote and nobody changed since."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import grpc

from services.runtime.pagination import fingerprint
from steward.users.v1 import assignments_pb2 as pb
from steward.users.v1 import events_pb2 as epb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user

MANUAL = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_MANUAL)
JOB_A = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="jobs/etm-a")
JOB_B = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="jobs/etm-b")
# The sync service's token.
SYNC = bearer("service:sync", roles=(), scopes=["users.read", "assignments.write"])
SUCCESS, SALES = "roles/success_manager", "roles/sales_manager"
Outcome = pb.ClearRowOutcome
_accounts = itertools.count()


def acct() -> str:
    return f"0015g00000SYN{next(_accounts):05d}"


def name(user) -> str:
    return f"users/{user.id}"


def write(api, source, *rows: tuple[str, str, object]) -> None:
    """(account, role, user) rows through BatchSetAssignments, as the sync service writes them."""
    reply = api.assignments.BatchSetAssignments(
        pb.BatchSetAssignmentsRequest(
            rows=[pb.AssignmentRow(account_id=a, role=r, user=pb.UserRef(user=name(u))) for a, r, u in rows],
            source=source,
        ),
        metadata=SYNC if source.source == pb.ASSIGNMENT_SOURCE_INTEGRATION else bearer(),
    )
    assert reply.failed_count == 0, reply


def listed(api, md=SYNC, **filters) -> list[tuple[str, str, str, str]]:
    reply = api.assignments.ListAssignments(pb.ListAssignmentsRequest(**filters), metadata=md)
    return [(a.account_id, a.role, a.user, a.source_ref) for a in reply.assignments]


def clear(api, rows, source=JOB_A, only_own=True, md=SYNC, request_id=""):
    return api.assignments.BatchClearAssignments(
        pb.BatchClearAssignmentsRequest(
            rows=[pb.ClearRow(account_id=a, role=r, expected_user=u) for a, r, u in rows],
            source=source,
            only_own=only_own,
            request_id=request_id,
        ),
        metadata=md,
    )


def results(reply) -> list[tuple[int, int, str]]:
    return [(o.index, o.result, o.reason) for o in reply.outcomes]


def history(api, account):
    return list(
        api.assignments.ListAssignmentHistory(
            pb.ListAssignmentHistoryRequest(account_id=account), metadata=SYNC
        ).changes
    )


def events(api, types, count):
    stream = api.events.WatchEvents(epb.WatchEventsRequest(types=types), metadata=bearer(), timeout=10)
    found = [next(stream) for _ in range(count)]
    stream.cancel()
    return found


# ---- ListAssignments(source, source_ref) ----------------------------------------------------------


def test_list_by_source_ref_shows_only_what_the_job_holds_now_and_pages_with_the_filter(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    a1, a2, a3, a4, a5 = (acct() for _ in range(5))
    write(api, JOB_A, (a1, SUCCESS, ada), (a1, SALES, bob), (a2, SUCCESS, ada), (a3, SUCCESS, ada), (a4, SALES, bob))
    write(api, JOB_B, (a5, SUCCESS, bob))
    write(api, MANUAL, (a2, SUCCESS, bob))  # another source overwrote this one
    write(api, JOB_B, (a3, SUCCESS, bob))  # and another job this one

    mine = [
        (a1, SALES, name(bob), "jobs/etm-a"),
        (a1, SUCCESS, name(ada), "jobs/etm-a"),
        (a4, SALES, name(bob), "jobs/etm-a"),
    ]
    by_job: dict[str, Any] = {"source": pb.ASSIGNMENT_SOURCE_INTEGRATION, "source_ref": "jobs/etm-a"}
    assert listed(api, **by_job) == mine
    assert listed(api, source_ref="jobs/etm-a") == mine
    assert [(a, r) for a, r, *_ in listed(api, source=pb.ASSIGNMENT_SOURCE_INTEGRATION)] == [
        (a1, SALES),
        (a1, SUCCESS),
        (a3, SUCCESS),
        (a4, SALES),
        (a5, SUCCESS),
    ]
    assert [(a, r) for a, r, *_ in listed(api, source=pb.ASSIGNMENT_SOURCE_MANUAL)] == [(a2, SUCCESS)]
    assert listed(api, source=pb.ASSIGNMENT_SOURCE_MANUAL, source_ref="jobs/etm-a") == []
    # With the other filters.
    assert listed(api, role=SALES, **by_job) == [mine[0], mine[2]]
    assert listed(api, user=name(ada), **by_job) == [mine[1]]
    assert listed(api, account_id=a4, **by_job) == [mine[2]]

    # One row a page: the filter holds on every page.
    pages, token = [], ""
    while True:
        page = api.assignments.ListAssignments(
            pb.ListAssignmentsRequest(page_size=1, page_token=token, **by_job), metadata=SYNC
        )
        pages.append([(a.account_id, a.role, a.user, a.source_ref) for a in page.assignments])
        token = page.next_page_token
        if not token:
            break
    assert pages == [[row] for row in mine]

    first = api.assignments.ListAssignments(pb.ListAssignmentsRequest(page_size=1, **by_job), metadata=SYNC)
    others: list[dict[str, Any]] = [
        {"source": pb.ASSIGNMENT_SOURCE_INTEGRATION, "source_ref": "jobs/etm-b"},
        {"source_ref": "jobs/etm-a"},
        {"source": pb.ASSIGNMENT_SOURCE_INTEGRATION},
        {},
    ]
    for other in others:
        mismatch = call_fails(
            api.assignments.ListAssignments,
            pb.ListAssignmentsRequest(page_size=1, page_token=first.next_page_token, **other),
            metadata=SYNC,
        )
        assert mismatch.violation_reasons == {"page_token": "PAGE_TOKEN_MISMATCH"}, other
    unfiltered = api.assignments.ListAssignments(pb.ListAssignmentsRequest(page_size=1), metadata=SYNC)
    mismatch = call_fails(
        api.assignments.ListAssignments,
        pb.ListAssignmentsRequest(page_size=1, page_token=unfiltered.next_page_token, **by_job),
        metadata=SYNC,
    )
    assert mismatch.violation_reasons == {"page_token": "PAGE_TOKEN_MISMATCH"}
    # Without the new filters a token is what it always was: tokens issued before them still work.
    blob = unfiltered.next_page_token + "=" * (-len(unfiltered.next_page_token) % 4)
    assert json.loads(base64.urlsafe_b64decode(blob))["q"] == fingerprint(user=None, role=None, account="")


def test_list_filters_are_validated(users_api):
    api = users_api()
    assert listed(api, source_ref="x" * 200) == []
    too_long = call_fails(
        api.assignments.ListAssignments, pb.ListAssignmentsRequest(source_ref="x" * 201), metadata=SYNC
    )
    assert (too_long.code, too_long.violation_reasons) == (grpc.StatusCode.INVALID_ARGUMENT, {"source_ref": "TOO_LONG"})
    unknown = call_fails(api.assignments.ListAssignments, pb.ListAssignmentsRequest(source=99), metadata=SYNC)  # type: ignore[arg-type]
    assert unknown.violation_reasons == {"source": "ENUM_VALUE_INVALID"}


# ---- BatchClearAssignments ------------------------------------------------------------------------


def test_batch_clear_takes_only_what_the_job_wrote_and_nobody_changed_since(users_api, admin):
    api = users_api()
    api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(
                key="territory_owner",
                display_name="Territory Owner",
                source=pb.ROLE_SOURCE_INTEGRATION_ONLY,
                empty_value=pb.EMPTY_VALUE_CLEAR,
            )
        ),
        metadata=admin,
    )
    territory = "roles/territory_owner"
    ada, bob, carol = (add_user(api.db, f"{n}@example.com") for n in ("ada", "bob", "carol"))
    a1, a2, a3, a4, a5, a6, a7 = (acct() for _ in range(7))
    write(
        api,
        JOB_A,
        (a1, SUCCESS, ada),
        (a2, SUCCESS, ada),
        (a3, SUCCESS, ada),
        (a4, SUCCESS, bob),
        (a6, territory, bob),
        (a7, SALES, carol),
    )
    write(api, MANUAL, (a2, SUCCESS, bob))  # another user, written by hand
    write(api, JOB_B, (a3, SUCCESS, carol), (a3, SUCCESS, ada))  # the same user, but now another job's

    reply = clear(
        api,
        [
            (a1, SUCCESS, name(ada)),  # the job's, untouched: cleared (success_manager keeps on empty values)
            (a2, SUCCESS, name(ada)),  # now bob's
            (a3, SUCCESS, name(ada)),  # ada again, but written by jobs/etm-b
            (a4, SUCCESS, name(ada)),  # the job wrote bob, not ada
            (a5, SUCCESS, name(ada)),  # nobody
            (a1, SUCCESS, name(ada)),  # the same slot again: cleared a moment ago
            (a5, "roles/no_such_role", name(ada)),
            (a6, territory, name(bob)),  # integration-only, empty value CLEAR: cleared
            (a7, SALES, ""),  # whoever holds it
        ],
    )
    assert results(reply) == [
        (0, Outcome.CLEARED, ""),
        (1, Outcome.SKIPPED, "CHANGED_SINCE"),
        (2, Outcome.SKIPPED, "CHANGED_SINCE"),
        (3, Outcome.SKIPPED, "CHANGED_SINCE"),
        (4, Outcome.SKIPPED, "NOT_ASSIGNED"),
        (5, Outcome.SKIPPED, "NOT_ASSIGNED"),
        (6, Outcome.FAILED, "ROLE_NOT_FOUND"),
        (7, Outcome.CLEARED, ""),
        (8, Outcome.CLEARED, ""),
    ]
    assert (reply.cleared_count, reply.skipped_count) == (3, 5)
    assert name(bob) in reply.outcomes[1].description and "jobs/etm-b" in reply.outcomes[2].description
    assert listed(api, source_ref="jobs/etm-a") == [(a4, SUCCESS, name(bob), "jobs/etm-a")]
    assert [(a, r, u) for a, r, u, _ in listed(api)] == [
        (a2, SUCCESS, name(bob)),
        (a3, SUCCESS, name(ada)),
        (a4, SUCCESS, name(bob)),
    ]

    # History as ClearAssignment writes it: the job as source, the caller as actor.
    latest = history(api, a1)[0]
    assert (latest.role, latest.user, latest.previous_user) == (SUCCESS, "", name(ada))
    assert (latest.source, latest.source_ref, latest.actor) == (
        pb.ASSIGNMENT_SOURCE_INTEGRATION,
        "jobs/etm-a",
        "service:sync",
    )
    assert [(c.user, c.previous_user) for c in history(api, a6)] == [("", name(bob)), (name(bob), "")]
    assert len(history(api, a2)) == 2 and len(history(api, a5)) == 0

    # One assignment.cleared event per cleared row, in row order, and nothing for the others.
    api.assignments.ClearAssignment(
        pb.ClearAssignmentRequest(account_id=a4, role=SUCCESS, source=MANUAL), metadata=admin
    )
    cleared = events(api, ["assignment.cleared"], 4)
    assert [(e.data["account_id"], e.data["role"], e.data["previous_user"]) for e in cleared] == [
        (a1, SUCCESS, name(ada)),
        (a6, territory, name(bob)),
        (a7, SALES, name(carol)),
        (a4, SUCCESS, name(bob)),  # the single clear that came after
    ]
    first = cleared[0]
    assert (first.subject, first.actor) == (f"accounts/{a1}/roles/success_manager", "service:sync")
    assert (first.data["user"], first.data["source"], first.data["source_ref"], first.data["attribute"]) == (
        "",
        "INTEGRATION",
        "jobs/etm-a",
        "success_manager___tid",
    )


def test_without_only_own_the_expected_user_is_the_only_condition(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    a1, a2 = acct(), acct()
    write(api, MANUAL, (a1, SUCCESS, ada), (a2, SUCCESS, bob))
    reply = clear(api, [(a1, SUCCESS, name(ada)), (a2, SUCCESS, name(ada))], only_own=False)
    assert results(reply) == [(0, Outcome.CLEARED, ""), (1, Outcome.SKIPPED, "CHANGED_SINCE")]
    assert [a for a, *_ in listed(api)] == [a2]
    change = history(api, a1)[0]
    assert (change.previous_user, change.source_ref) == (name(ada), "jobs/etm-a")


def test_batch_clear_is_idempotent_by_request_id(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    a1, a2 = acct(), acct()
    write(api, JOB_A, (a1, SUCCESS, ada), (a2, SUCCESS, ada))
    rows = [(a1, SUCCESS, name(ada)), (a2, SALES, name(ada))]
    first = clear(api, rows, request_id="6f1c2a7e-1d7b-4b8e-9f59-3c1f0b0f9a11")
    assert results(first) == [(0, Outcome.CLEARED, ""), (1, Outcome.SKIPPED, "NOT_ASSIGNED")]
    write(api, JOB_A, (a1, SUCCESS, ada))  # assigned again since: a retry must not clear it again
    again = clear(api, rows, request_id="6f1c2a7e-1d7b-4b8e-9f59-3c1f0b0f9a11")
    assert again == first
    assert [a for a, *_ in listed(api)] == [a1, a2]
    assert len(history(api, a1)) == 3  # set, cleared once, set again
    reused = call_fails(
        api.assignments.BatchClearAssignments,
        pb.BatchClearAssignmentsRequest(
            rows=[pb.ClearRow(account_id=a2, role=SUCCESS)],
            source=JOB_A,
            only_own=True,
            request_id="6f1c2a7e-1d7b-4b8e-9f59-3c1f0b0f9a11",
        ),
        metadata=SYNC,
    )
    assert reused.violation_reasons == {"request_id": "REQUEST_ID_REUSED"}
    assert [a for a, *_ in listed(api)] == [a1, a2]


def test_batch_clear_refuses_bad_requests_with_every_violation(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    a1 = acct()
    write(api, JOB_A, (a1, SUCCESS, ada))

    empty = call_fails(api.assignments.BatchClearAssignments, pb.BatchClearAssignmentsRequest(), metadata=SYNC)
    assert empty.code == grpc.StatusCode.INVALID_ARGUMENT
    assert empty.violation_reasons == {"rows": "REQUIRED", "source.source": "REQUIRED"}

    bad = call_fails(
        api.assignments.BatchClearAssignments,
        pb.BatchClearAssignmentsRequest(
            rows=[
                pb.ClearRow(account_id=a1, role=SUCCESS, expected_user=name(ada)),  # fine
                pb.ClearRow(account_id="", role=SUCCESS),
                pb.ClearRow(account_id=a1, role=""),
                pb.ClearRow(account_id=a1, role="roles/Success Manager"),
                pb.ClearRow(account_id=a1, role=SUCCESS, expected_user="ada@example.com"),
            ],
            source=JOB_A,
        ),
        metadata=SYNC,
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.violation_reasons == {
        "rows[1].account_id": "ACCOUNT_ID_INVALID",
        "rows[2].role": "REQUIRED",
        "rows[3].role": "ROLE_KEY_INVALID",
        "rows[4].expected_user": "RESOURCE_NAME_INVALID",
    }
    too_many = call_fails(
        api.assignments.BatchClearAssignments,
        pb.BatchClearAssignmentsRequest(rows=[pb.ClearRow(account_id=a1, role=SUCCESS)] * 10_001, source=JOB_A),
        metadata=SYNC,
    )
    assert too_many.violation_reasons == {"rows": "TOO_MANY"}
    reserved = call_fails(
        api.assignments.BatchClearAssignments,
        pb.BatchClearAssignmentsRequest(
            rows=[pb.ClearRow(account_id=a1, role=SUCCESS)],
            source=pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_REASSIGNMENT),
        ),
        metadata=bearer(),
    )
    assert (reserved.code, reserved.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SOURCE_RESERVED")
    # Refused requests write nothing.
    assert listed(api) == [(a1, SUCCESS, name(ada), "jobs/etm-a")] and len(history(api, a1)) == 1


def test_batch_clear_needs_the_permission_clear_assignment_needs(users_api, admin):
    from services.users.domain.model import License

    api = users_api()
    api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(key="territory_owner", display_name="Territory", source=pb.ROLE_SOURCE_INTEGRATION_ONLY)
        ),
        metadata=admin,
    )
    ada = add_user(api.db, "ada@example.com")
    contributor = add_user(api.db, "contrib@example.com", license=License.CONTRIBUTOR)
    a1 = acct()
    write(api, JOB_A, (a1, SUCCESS, ada), (a1, "roles/territory_owner", ada))
    rows = [(a1, SUCCESS, name(ada))]
    for md, source in (
        (bearer("service:sync", roles=(), scopes=["users.read"]), JOB_A),  # no assignments.write
        (bearer(contributor.id, roles=()), JOB_A),  # people write MANUAL and BULK, not INTEGRATION
        (SYNC, MANUAL),  # and integrations the other way round
    ):
        denied = call_fails(
            api.assignments.BatchClearAssignments,
            pb.BatchClearAssignmentsRequest(
                rows=[pb.ClearRow(account_id=a, role=r, expected_user=u) for a, r, u in rows], source=source
            ),
            metadata=md,
        )
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert len(listed(api)) == 2
    # A MANUAL clear may not touch an integration-only role, as with ClearAssignment: that row fails.
    reply = clear(
        api,
        [(a1, "roles/territory_owner", name(ada)), (a1, SUCCESS, name(ada))],
        source=MANUAL,
        only_own=False,
        md=bearer(contributor.id, roles=()),
    )
    assert results(reply) == [(0, Outcome.FAILED, "ROLE_INTEGRATION_ONLY"), (1, Outcome.CLEARED, "")]
    assert [r for _, r, *_ in listed(api)] == ["roles/territory_owner"]


def test_a_large_batch_clears_across_roles_in_one_call(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    accounts = sorted(acct() for _ in range(1200))
    write(api, JOB_A, *[(a, role, ada) for a in accounts for role in (SUCCESS, SALES)])
    keep = accounts[::100]  # ETM still returns these
    gone = [(a, role, name(ada)) for a in accounts if a not in keep for role in (SUCCESS, SALES)]
    reply = clear(api, gone, request_id="0b5d5f1e-8a51-4c39-a7b5-8a2f2d6a6c01")
    assert (reply.cleared_count, reply.skipped_count, len(reply.outcomes)) == (len(gone), 0, len(gone))
    assert [(a, r) for a, r, *_ in listed(api, source_ref="jobs/etm-a", page_size=1000)] == [
        (a, role) for a in keep for role in (SALES, SUCCESS)
    ]
