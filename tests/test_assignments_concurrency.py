"""Concurrent writers against one account and role, and a consumer that keeps reconnecting."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc

from steward.users.v1 import assignments_pb2 as pb
from steward.users.v1 import events_pb2 as epb
from tests.seed import add_user

MANUAL = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_MANUAL)


def test_concurrent_set_assignment_leaves_one_holder_and_a_consistent_history(users_api, admin):
    api = users_api()
    users = [add_user(api.db, f"u{i}@example.com") for i in range(12)]

    def assign(user):
        return api.assignments.SetAssignment(
            pb.SetAssignmentRequest(
                account_id="ACC-RACE",
                role="roles/success_manager",
                user=pb.UserRef(user=f"users/{user.id}"),
                source=MANUAL,
            ),
            metadata=admin,
        )

    with ThreadPoolExecutor(max_workers=12) as pool:
        replies = list(pool.map(assign, users * 2))  # every user twice: some writes are no-ops
    assert all(r.role == "roles/success_manager" for r in replies)
    team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id="ACC-RACE"), metadata=admin)
    assert len(team.assignments) == 1
    holder = team.assignments[0].user
    changes = list(
        reversed(
            api.assignments.ListAssignmentHistory(
                pb.ListAssignmentHistoryRequest(account_id="ACC-RACE", page_size=1000), metadata=admin
            ).changes
        )
    )
    # A chain: each change replaced exactly the user the previous change put in place.
    assert changes[0].previous_user == ""
    for before, after in itertools.pairwise(changes):
        assert after.previous_user == before.user
        assert after.user != before.user  # setting the holder again writes no history
    assert changes[-1].user == holder


def test_event_stream_across_reconnects_has_no_gap_and_no_duplicate(users_api, admin):
    api = users_api()
    users = [add_user(api.db, f"w{i}@example.com") for i in range(4)]
    writes_per_writer = 40
    done = threading.Event()

    def writer(index: int) -> None:
        for n in range(writes_per_writer):
            api.assignments.SetAssignment(
                pb.SetAssignmentRequest(
                    account_id=f"ACC-{index}-{n}",
                    role="roles/sales_manager",
                    user=pb.UserRef(user=f"users/{users[index].id}"),
                    source=MANUAL,
                ),
                metadata=admin,
            )

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    received: list[epb.Event] = []
    cursor = ""
    expected = len(users) * writes_per_writer
    reconnects = 0
    while len(received) < expected:
        stream = api.events.WatchEvents(
            epb.WatchEventsRequest(after_cursor=cursor, types=["assignment.set"]), metadata=admin, timeout=30
        )
        try:
            for event in stream:  # take a few, then drop the connection mid-stream
                received.append(event)
                cursor = event.cursor
                if len(received) % 7 == 0 or len(received) == expected:
                    break
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error
        finally:
            stream.cancel()
        reconnects += 1
    for thread in threads:
        thread.join()
    done.set()
    cursors = [int(e.cursor) for e in received]
    assert cursors == sorted(set(cursors)), "events out of order or repeated"
    seen = sorted((e.data["account_id"], e.data["user"]) for e in received)
    wanted = sorted(
        (f"ACC-{i}-{n}", f"users/{users[i].id}") for i in range(len(users)) for n in range(writes_per_writer)
    )
    assert seen == wanted
    assert reconnects >= expected // 7


def test_an_event_committed_early_is_not_delivered_before_an_earlier_open_one(databases):
    """The race a cursor-based reader must survive: seq 1 taken but not committed, seq 2 committed.

    Had the second writer been allowed to commit first, a reader would deliver seq 2, move its
    cursor past 1, and never see 1. Appends are serialised, so the second writer waits instead.
    """
    from services.runtime.db import Database, utcnow
    from services.users.app import MIGRATIONS
    from services.users.domain.events import DomainEvent
    from services.users.unit_of_work import UsersUnitOfWork

    url = databases.url("users")
    MIGRATIONS.upgrade(url)
    db = Database(url)
    try:
        slow = UsersUnitOfWork(db).__enter__()
        slow.events.append(DomainEvent("test.first", "x/1", "test"), utcnow())
        slow.session.flush()

        def fast_writer() -> None:
            with UsersUnitOfWork(db) as uow:
                uow.events.append(DomainEvent("test.second", "x/2", "test"), utcnow())
                uow.commit()

        fast = threading.Thread(target=fast_writer)
        fast.start()
        fast.join(timeout=1.0)
        with UsersUnitOfWork(db, write=False) as reader:
            visible_meanwhile = [e.type for e in reader.events.after(0, [], 100)]
        assert visible_meanwhile == [], "a later event became visible while an earlier one was still open"
        slow.commit()
        slow.__exit__(None, None, None)
        fast.join(timeout=30)
        with UsersUnitOfWork(db, write=False) as reader:
            assert [e.type for e in reader.events.after(0, [], 100)] == ["test.first", "test.second"]
    finally:
        db.dispose()
