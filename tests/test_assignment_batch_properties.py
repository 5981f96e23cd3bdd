"""Property: BatchSetAssignments, written with a handful of set statements, does exactly what its
rows would do applied one by one through SetAssignment and ClearAssignment (the oracle): the
same outcome per row, the same holders, the same history chains and the same events.

Two users services on two databases get the same users, roles and starting holders; the batch
goes to one, the rows one at a time to the other. Batches mix conflicting rows, one slot named
several times, unknown, disabled, invited and viewer users, rows without a user (clears, or
nothing for a KEEP_EXISTING role), unknown roles and no-op rows, and rows that name writers of
their own."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.users.domain.model import License, UserStatus
from services.users.unit_of_work import UsersUnitOfWork
from steward.users.v1 import assignments_pb2 as pb
from tests.errors import failure
from tests.seed import add_user

_examples = itertools.count()
KEEP = "roles/success_manager"  # builtin: EDITABLE, KEEP_EXISTING
CLEARS = "roles/renewal_owner"  # EDITABLE, CLEAR
INTEGRATION_ONLY = "roles/territory_csm"  # INTEGRATION_ONLY, CLEAR
ROLES = [KEEP, CLEARS, INTEGRATION_ONLY, "roles/no_such_role"]
USERS = {  # email -> (status, license)
    "ann@example.com": (UserStatus.ACTIVE, License.PRACTITIONER),
    "bob@example.com": (UserStatus.ACTIVE, License.PRACTITIONER),
    "cat@example.com": (UserStatus.ACTIVE, License.CONTRIBUTOR),
    "vic@example.com": (UserStatus.ACTIVE, License.VIEWER),
    "ina@example.com": (UserStatus.CREATED, License.PRACTITIONER),
    "dan@example.com": (UserStatus.DISABLED, License.PRACTITIONER),
}
HOLDERS = ["ann@example.com", "bob@example.com", "cat@example.com", "vic@example.com"]
SOURCES = {
    "MANUAL": pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_MANUAL),
    "INTEGRATION": pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="etm-job"),
}
# A row may name its own writer: one of these, or none (the request's).
ROW_SOURCES = {**SOURCES, "OTHER_JOB": pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="other-job")}
ACCOUNTS = 4

rows = st.lists(
    st.tuples(
        st.integers(0, ACCOUNTS - 1),
        st.sampled_from(ROLES),
        st.one_of(st.none(), st.sampled_from([*USERS, "ghost@example.com"])),
    ),
    min_size=1,
    max_size=24,
)
rows_with_writers = st.lists(
    st.tuples(
        st.integers(0, ACCOUNTS - 1),
        st.sampled_from(ROLES),
        st.one_of(st.none(), st.sampled_from([*USERS, "ghost@example.com"])),
        st.one_of(st.none(), st.sampled_from(sorted(ROW_SOURCES))),
    ),
    min_size=1,
    max_size=24,
)
start = st.lists(
    st.tuples(st.integers(0, ACCOUNTS - 1), st.sampled_from(ROLES[:3]), st.sampled_from(HOLDERS)), max_size=8
)


@pytest.fixture
def twins(users_api, databases, admin):
    """Two users services, each on its own database, with the same users and roles."""
    pair = [users_api(database_url=databases.url(name)) for name in ("batch", "oracle")]
    emails = []
    for api in pair:
        ids = {}
        for email, (status, license) in USERS.items():
            ids[add_user(api.db, email, status=status, license=license).id] = email
        emails.append(ids)
        for key, source in (
            ("renewal_owner", pb.ROLE_SOURCE_EDITABLE),
            ("territory_csm", pb.ROLE_SOURCE_INTEGRATION_ONLY),
        ):
            api.assignments.CreateRole(
                pb.CreateRoleRequest(
                    role=pb.Role(key=key, display_name=key.title(), source=source, empty_value=pb.EMPTY_VALUE_CLEAR)
                ),
                metadata=admin,
            )
    return pair, emails


def _email(ids: dict[str, str], name: str) -> str:
    return ids[name.removeprefix("users/")] if name else ""


def _one_by_one(api: Any, admin: Any, ids: dict[str, str], account: str, role: str, email: str | None, source: Any):
    """What the row does through the single-row RPCs: (result, user, previous user, reason)."""
    try:
        if email is None:
            if role == KEEP:
                return ("RESULT_UNCHANGED", "", "", "")  # a KEEP_EXISTING role: the row says nothing
            reply = api.assignments.ClearAssignment(
                pb.ClearAssignmentRequest(account_id=account, role=role, source=source), metadata=admin
            )
            previous = _email(ids, reply.previous_user)
            return ("RESULT_CLEARED", "", previous, "") if previous else ("RESULT_UNCHANGED", "", "", "")
        team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=admin)
        before = next((_email(ids, a.user) for a in team.assignments if a.role == role), "")
        api.assignments.SetAssignment(
            pb.SetAssignmentRequest(account_id=account, role=role, user=pb.UserRef(email=email), source=source),
            metadata=admin,
        )
        return ("RESULT_UNCHANGED" if before == email else "RESULT_SET", email, before, "")
    except grpc.RpcError as error:
        return ("RESULT_FAILED", "", "", failure(error).reason)


def _state(api: Any, admin: Any, ids: dict[str, str], accounts: list[str]) -> dict[str, Any]:
    teams, history = {}, {}
    for account in accounts:
        team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=admin)
        teams[account] = sorted((a.role, _email(ids, a.user), a.source, a.source_ref) for a in team.assignments)
        changes = api.assignments.ListAssignmentHistory(
            pb.ListAssignmentHistoryRequest(account_id=account, page_size=1000), metadata=admin
        ).changes
        history[account] = [
            (c.role, _email(ids, c.user), _email(ids, c.previous_user), c.source, c.source_ref, c.actor)
            for c in changes
        ]
    return {"teams": teams, "history": history}


def _events(api: Any, ids: dict[str, str], prefix: str) -> list[tuple[Any, ...]]:
    """The outbox the event stream serves, this example's accounts only, users named by email."""
    with UsersUnitOfWork(api.db, write=False) as uow:
        stored = uow.events.after(0, ["assignment.set", "assignment.cleared"], 1_000_000)
    return [
        (
            e.type,
            e.subject,
            {k: _email(ids, v) if k in ("user", "previous_user") else v for k, v in e.data.items()},
        )
        for e in stored
        if e.subject.startswith(f"accounts/{prefix}")
    ]


def _batch_matches_one_by_one(twins, admin, batch, before, source) -> None:
    """batch: (account, role, email or None, the row's own writer or None)."""
    (batched, oracle), (batch_ids, oracle_ids) = twins
    prefix = f"B{next(_examples)}-"
    accounts = [f"{prefix}{i}" for i in range(ACCOUNTS)]
    for api in (batched, oracle):
        for account, role, email in before:
            api.assignments.SetAssignment(
                pb.SetAssignmentRequest(
                    account_id=accounts[account], role=role, user=pb.UserRef(email=email), source=SOURCES["INTEGRATION"]
                ),
                metadata=admin,
            )

    reply = batched.assignments.BatchSetAssignments(
        pb.BatchSetAssignmentsRequest(
            rows=[
                pb.AssignmentRow(
                    account_id=accounts[a],
                    role=role,
                    user=pb.UserRef(email=email) if email else None,
                    source=ROW_SOURCES[own] if own else None,
                )
                for a, role, email, own in batch
            ],
            source=SOURCES[source],
        ),
        metadata=admin,
    )
    got = [
        (
            pb.AssignmentRowOutcome.Result.Name(o.result),
            _email(batch_ids, o.user),
            _email(batch_ids, o.previous_user),
            o.reason,
        )
        for o in sorted(reply.outcomes, key=lambda o: o.row)
    ]
    expected = [
        _one_by_one(oracle, admin, oracle_ids, accounts[a], role, email, ROW_SOURCES[own or source])
        for a, role, email, own in batch
    ]
    assert got == expected
    assert reply.changed_count == sum(1 for r in expected if r[0] in ("RESULT_SET", "RESULT_CLEARED"))
    assert reply.failed_count == sum(1 for r in expected if r[0] == "RESULT_FAILED")
    assert _state(batched, admin, batch_ids, accounts) == _state(oracle, admin, oracle_ids, accounts)
    assert _events(batched, batch_ids, prefix) == _events(oracle, oracle_ids, prefix)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batch=rows, before=start, source=st.sampled_from(sorted(SOURCES)))
def test_a_batch_does_what_its_rows_do_one_by_one(twins, admin, batch, before, source):
    _batch_matches_one_by_one(twins, admin, [(*r, None) for r in batch], before, source)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(batch=rows_with_writers, before=start, source=st.sampled_from(sorted(SOURCES)))
def test_rows_with_writers_of_their_own_do_what_they_do_one_by_one(twins, admin, batch, before, source):
    """Each row writes as its own writer when it names one (AssignmentRow.source), else as the
    request's: the oracle sends each row alone with the writer it writes as. The holders keep the
    writer of their last change, the history and events name each change's."""
    _batch_matches_one_by_one(twins, admin, batch, before, source)


def test_concurrent_batches_over_the_same_accounts_in_opposite_orders(users_api, databases, admin):
    """No deadlock and no lost write: every call succeeds, and each slot's history is one chain
    (every change replaces the user the change before put there) ending in the current holder.
    Rounds alternate between free slots (the writers race to claim them) and taken ones (they
    race to lock them); a barrier starts each round's calls together."""
    if databases.backend != "postgresql":
        pytest.skip("SQLite serialises writers (BEGIN IMMEDIATE): nothing runs concurrently to deadlock")
    api = users_api()
    users = [add_user(api.db, f"c{i}@example.com") for i in range(4)]
    roles = ("roles/success_manager", "roles/sales_manager")
    rounds, writers = 8, 3
    integration = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="race")
    errors: list[grpc.RpcError] = []
    changed = []
    barrier = threading.Barrier(writers)

    def slots(round_: int) -> list[tuple[str, str]]:
        return [(f"C{round_ // 2}-{i:04d}", role) for i in range(400) for role in roles]

    def writer(number: int) -> None:
        for round_ in range(rounds):
            order = slots(round_) if (number + round_) % 2 == 0 else list(reversed(slots(round_)))
            user = users[(number + round_) % len(users)]
            barrier.wait()
            try:
                reply = api.assignments.BatchSetAssignments(
                    pb.BatchSetAssignmentsRequest(
                        rows=[
                            pb.AssignmentRow(account_id=a, role=r, user=pb.UserRef(user=f"users/{user.id}"))
                            for a, r in order
                        ],
                        source=integration,
                    ),
                    metadata=admin,
                    timeout=60,
                )
                changed.append(reply.changed_count)
            except grpc.RpcError as error:
                errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [failure(e) for e in errors] == []
    history_count = 0
    for account in sorted({a for r in range(rounds) for a, _ in slots(r)}):
        team = {
            a.role: a.user
            for a in api.assignments.GetAccountTeam(
                pb.GetAccountTeamRequest(account_id=account), metadata=admin
            ).assignments
        }
        changes = list(
            reversed(
                api.assignments.ListAssignmentHistory(
                    pb.ListAssignmentHistoryRequest(account_id=account, page_size=1000), metadata=admin
                ).changes
            )
        )
        history_count += len(changes)
        for role in roles:
            chain = [c for c in changes if c.role == role]
            assert chain[0].previous_user == ""
            for earlier, later in itertools.pairwise(chain):
                assert later.previous_user == earlier.user != later.user
            assert chain[-1].user == team[role]
    assert history_count == sum(changed)  # every change a call reported is in the history, once
