"""Property: for random owners of random assets and random plans, a reassignment moves exactly what
the plan covers to exactly the right targets, conserves assignments and writes their history."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import work_pb2 as wpb
from tests.seed import add_user
from tests.test_reassignment import assign, name, owned, resource, task

_ids = itertools.count()
ROLES = ["roles/success_manager", "roles/sales_manager"]
KINDS = [wpb.RESOURCE_KIND_SEGMENT, wpb.RESOURCE_KIND_PLAY, wpb.RESOURCE_KIND_REPORT, wpb.RESOURCE_KIND_SUCCESS_BLOC]

assets = st.fixed_dictionaries(
    {
        "assignments": st.lists(st.sampled_from(ROLES), max_size=6),
        "open_tasks": st.integers(0, 3),
        # Reports are always shared (the service refuses a private one).
        "resources": st.lists(
            st.sampled_from(KINDS).flatmap(
                lambda kind: st.tuples(
                    st.just(kind), st.just(True) if kind == wpb.RESOURCE_KIND_REPORT else st.booleans()
                )
            ),
            max_size=5,
        ),
        "plan": st.fixed_dictionaries(
            {
                part: st.sampled_from([None, 0, 1])
                for part in ("shared_resources_to", "private_resources_to", "accounts_and_tasks_to")
            }
        ),
    }
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(case=assets)
def test_reassignment_moves_exactly_what_the_plan_covers(users_api_once, admin, case):
    api = users_api_once
    n = next(_ids)
    leaver = add_user(api.db, f"leaver{n}@example.com")
    targets = [add_user(api.db, f"t{n}-{i}@example.com") for i in range(2)]
    accounts = [(f"P{n}-{i}", role) for i, role in enumerate(case["assignments"])]
    for account, role in accounts:
        assign(api, admin, account, role, leaver)
    for _ in range(case["open_tasks"]):
        task(api, admin, f"P{n}", leaver)
    created = {}
    for i, (kind, shared) in enumerate(case["resources"]):
        r = resource(api, admin, kind, f"r{n}-{i}", leaver, wpb.VISIBILITY_SHARED if shared else wpb.VISIBILITY_PRIVATE)
        created[r.name] = "shared" if shared else "private"
    plan = {part: name(targets[t]) for part, t in case["plan"].items() if t is not None}
    if not plan:
        return
    api.users.ReassignUserResources(
        pb.ReassignUserResourcesRequest(name=name(leaver), plan=pb.ReassignmentPlan(**plan)), metadata=admin
    )

    # Resources: covered ones went to their part's target, the rest stayed.
    expected_owner = {}
    for resource_name, visibility in created.items():
        part = "shared_resources_to" if visibility == "shared" else "private_resources_to"
        expected_owner[resource_name] = plan.get(part, name(leaver))
    for user in (leaver, *targets):
        mine = {r for r, owner in expected_owner.items() if owner == name(user)}
        assert set(owned(api, admin, user)) == mine
    # Assignments: conserved, on the right holder, one REASSIGNMENT history row each when moved.
    new_holder = plan.get("accounts_and_tasks_to", name(leaver))
    for account, role in accounts:
        team = api.assignments.GetAccountTeam(apb.GetAccountTeamRequest(account_id=account), metadata=admin)
        assert [(a.role, a.user) for a in team.assignments] == [(role, new_holder)]
        changes = api.assignments.ListAssignmentHistory(
            apb.ListAssignmentHistoryRequest(account_id=account), metadata=admin
        ).changes
        moved = [c for c in changes if c.source == apb.ASSIGNMENT_SOURCE_REASSIGNMENT]
        assert len(moved) == (1 if "accounts_and_tasks_to" in plan else 0)
    open_tasks = api.tasks.ListTasks(
        wpb.ListTasksRequest(account_id=f"P{n}", status=wpb.TASK_STATUS_OPEN), metadata=admin
    ).tasks
    assert [t.assignee for t in open_tasks] == [new_holder] * case["open_tasks"]


@pytest.fixture
def users_api_once(users_api):
    """One server for all of a property test's examples (each example uses its own users and accounts)."""
    return users_api()


def test_a_target_deleted_mid_reassignment_leaves_everything_as_it_was(users_api, databases, admin):
    if databases.backend != "postgresql":
        pytest.skip("needs row locks held from outside the service: PostgreSQL")
    api = users_api()
    leaver, heir = add_user(api.db, "leaver@example.com"), add_user(api.db, "heir@example.com")
    for i in range(20):
        assign(api, admin, f"ACC{i}", "roles/success_manager", leaver)
        task(api, admin, f"ACC{i}", leaver)
    resource(api, admin, wpb.RESOURCE_KIND_SEGMENT, "seg", leaver)
    url = api.running.runtime.settings.database_url
    tables = ["users", "assignments", "assignment_history", "tasks", "resources", "events", "notifications"]

    def snapshot():
        engine = create_engine(url)
        with engine.connect() as conn:
            state = {t: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t}")).all()), key=repr) for t in tables}
        engine.dispose()
        return state

    before = snapshot()
    engine = create_engine(make_url(url))
    conn = engine.connect()
    tx = conn.begin()
    conn.execute(text("SELECT id FROM users WHERE id = :id FOR UPDATE"), {"id": heir.id})  # the heir is busy
    outcome: dict[str, Any] = {}

    def run():
        try:
            api.users.ReassignUserResources(
                pb.ReassignUserResourcesRequest(
                    name=name(leaver),
                    plan=pb.ReassignmentPlan(accounts_and_tasks_to=name(heir), shared_resources_to=name(heir)),
                ),
                metadata=admin,
            )
            outcome["result"] = "moved"
        except grpc.RpcError as error:
            outcome["result"] = (error.code(), error.details())

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(timeout=1.5)  # it moved everything and now waits for the heir's row
    assert worker.is_alive(), outcome
    conn.execute(text("UPDATE users SET status = 'DELETED', version = version + 1 WHERE id = :id"), {"id": heir.id})
    tx.commit()
    conn.close()
    engine.dispose()
    worker.join(timeout=30)
    code, details = outcome["result"]
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "DELETED" in details
    after = snapshot()
    after["users"] = [row for row in after["users"] if row[0] != heir.id]
    before["users"] = [row for row in before["users"] if row[0] != heir.id]
    assert after == before
