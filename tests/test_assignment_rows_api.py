"""BatchSetAssignments rows with writers and request ids of their own (AssignmentRow.source and
.request_id): a batch of many plays' rows, each recorded, checked and retried as its own."""

from __future__ import annotations

import itertools
import uuid

import grpc
from google.rpc import code_pb2

from services.users.domain.model import License
from steward.users.v1 import assignments_pb2 as pb
from steward.users.v1 import events_pb2 as epb
from steward.users.v1 import users_pb2 as upb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user

R = pb.AssignmentRowOutcome
CSM = "roles/success_manager"
INTEGRATION = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="jobs/etm-1")
MANUAL = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_MANUAL)
RULES = bearer("service:rules", roles=(), scopes=["users.read", "assignments.write"])
_accounts = itertools.count()


def acct() -> str:
    return f"0015g00000ROW{next(_accounts):05d}"


def name(user) -> str:
    return f"users/{user.id}"


def play(team, ref: str) -> pb.WriteSource:
    return pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_PLAY, source_ref=ref, play_team=team.name)


def row(account: str, user=None, source: pb.WriteSource | None = None, request_id: str = "", role: str = CSM):
    return pb.AssignmentRow(
        account_id=account,
        role=role,
        user=pb.UserRef(user=name(user)) if user is not None else None,
        source=source,
        request_id=request_id,
    )


def batch(api, rows, source: pb.WriteSource | None = None, metadata=RULES) -> pb.BatchSetAssignmentsResponse:
    return api.assignments.BatchSetAssignments(
        pb.BatchSetAssignmentsRequest(rows=rows, source=source), metadata=metadata
    )


def outcomes(reply) -> list[tuple[int, int, str, str, str]]:
    return [(o.row, o.result, o.user, o.previous_user, o.reason) for o in reply.outcomes]


def history(api, account) -> list[tuple[str, str, int, str]]:
    """Oldest first: (user, previous user, source, source_ref)."""
    changes = api.assignments.ListAssignmentHistory(
        pb.ListAssignmentHistoryRequest(account_id=account, page_size=100), metadata=RULES
    ).changes
    return [(c.user, c.previous_user, c.source, c.source_ref) for c in reversed(changes)]


def holder(api, account) -> tuple[str, int, str] | None:
    team = api.assignments.GetAccountTeam(pb.GetAccountTeamRequest(account_id=account), metadata=RULES)
    held = [(a.user, a.source, a.source_ref) for a in team.assignments if a.role == CSM]
    return held[0] if held else None


def holder_user(api, account) -> str:
    held = holder(api, account)
    return held[0] if held else ""


def listed(api, **filters) -> list[str]:
    reply = api.assignments.ListAssignments(pb.ListAssignmentsRequest(page_size=1000, **filters), metadata=RULES)
    return [a.account_id for a in reply.assignments]


def assignment_events(api) -> list[epb.Event]:
    """The assignment events so far: the stream up to a role.created written now as a sentinel."""
    key = f"sentinel_{uuid.uuid4().hex[:8]}"
    api.assignments.CreateRole(pb.CreateRoleRequest(role=pb.Role(key=key, display_name=key)), metadata=bearer())
    found = []
    stream = api.events.WatchEvents(epb.WatchEventsRequest(), metadata=bearer())
    for event in stream:
        if event.type == "role.created" and event.subject == f"roles/{key}":
            stream.cancel()
            break
        if event.type.startswith("assignment."):
            found.append(event)
    return found


def team_of(api, *members) -> upb.Team:
    team = api.teams.CreateTeam(
        upb.CreateTeamRequest(team=upb.Team(display_name=f"Team {uuid.uuid4().hex[:8]}")), metadata=bearer()
    )
    for member in members:
        api.teams.AddTeamMember(upb.AddTeamMemberRequest(team=team.name, user=name(member)), metadata=bearer())
    return team


def test_rows_write_as_their_own_source_in_holders_history_events_and_filters(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    team = team_of(api, ada, bob)
    a1, a2, a3, a4 = acct(), acct(), acct(), acct()
    reply = batch(
        api,
        [
            row(a1, ada, play(team, "plays/one")),
            row(a2, bob, play(team, "plays/two")),
            row(a3, ada, INTEGRATION),
            row(a4, bob),  # the request's writer
        ],
        source=pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="jobs/other"),
    )
    assert [o[1] for o in outcomes(reply)] == [R.RESULT_SET] * 4
    PLAY, INTEG = pb.ASSIGNMENT_SOURCE_PLAY, pb.ASSIGNMENT_SOURCE_INTEGRATION
    expected = {
        a1: (name(ada), PLAY, "plays/one"),
        a2: (name(bob), PLAY, "plays/two"),
        a3: (name(ada), INTEG, "jobs/etm-1"),
        a4: (name(bob), INTEG, "jobs/other"),
    }
    for account, (user, source, ref) in expected.items():
        assert holder(api, account) == (user, source, ref)
        assert history(api, account) == [(user, "", source, ref)]
    events = {e.data["account_id"]: e for e in assignment_events(api)}
    for account, (user, source, ref) in expected.items():
        data = events[account].data
        assert (data["user"], data["source"], data["source_ref"]) == (
            user,
            pb.AssignmentSource.Name(source).removeprefix("ASSIGNMENT_SOURCE_"),
            ref,
        )
        assert events[account].type == "assignment.set" and events[account].actor == "service:rules"
    assert sorted(listed(api, source=PLAY)) == sorted([a1, a2])
    assert listed(api, source_ref="plays/two") == [a2]
    assert listed(api, source=PLAY, source_ref="plays/one") == [a1]
    assert sorted(listed(api, source=INTEG)) == sorted([a3, a4])


def test_a_slot_named_by_several_writers_keeps_the_writer_of_its_last_change(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    team = team_of(api, ada, bob)
    free, held = acct(), acct()
    api.assignments.SetAssignment(
        pb.SetAssignmentRequest(account_id=held, role=CSM, user=pb.UserRef(user=name(ada)), source=MANUAL),
        metadata=bearer(),
    )
    p1, p2, p3 = (play(team, f"plays/{n}") for n in ("p1", "p2", "p3"))
    reply = batch(
        api,
        [
            row(free, ada, p1),  # claims the free slot as p1
            row(free, bob, p2),
            row(free, ada, p3),  # back to ada, now written by p3
            row(free, ada, INTEGRATION),  # the same user again: no change, the writer stays p3
            row(held, bob, p1),
            row(held, ada, p2),  # ends on the user it began with, written by p2
            row(held, ada, p3),  # unchanged
        ],
    )
    assert [o[1] for o in outcomes(reply)] == [
        R.RESULT_SET,
        R.RESULT_SET,
        R.RESULT_SET,
        R.RESULT_UNCHANGED,
        R.RESULT_SET,
        R.RESULT_SET,
        R.RESULT_UNCHANGED,
    ]
    PLAY = pb.ASSIGNMENT_SOURCE_PLAY
    assert holder(api, free) == (name(ada), PLAY, "plays/p3")
    assert history(api, free) == [
        (name(ada), "", PLAY, "plays/p1"),
        (name(bob), name(ada), PLAY, "plays/p2"),
        (name(ada), name(bob), PLAY, "plays/p3"),
    ]
    assert holder(api, held) == (name(ada), PLAY, "plays/p2")
    assert history(api, held)[1:] == [
        (name(bob), name(ada), PLAY, "plays/p1"),
        (name(ada), name(bob), PLAY, "plays/p2"),
    ]
    # One event per change, each with its row's writer, in row order.
    events = [(e.data["account_id"], e.data["source_ref"]) for e in assignment_events(api)]
    assert events == [
        (held, ""),
        (free, "plays/p1"),
        (free, "plays/p2"),
        (free, "plays/p3"),
        (held, "plays/p1"),
        (held, "plays/p2"),
    ]


def test_each_row_is_checked_as_its_own_writer(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    viewer = add_user(api.db, "viewer@example.com", license=License.VIEWER)
    ada_team, bob_team = team_of(api, ada, viewer), team_of(api, bob)
    accounts = [acct() for _ in range(6)]
    reply = batch(
        api,
        [
            row(accounts[0], ada, play(ada_team, "plays/a")),
            row(accounts[1], ada, play(bob_team, "plays/b")),  # ada is not in plays/b's team
            row(accounts[2], bob, play(bob_team, "plays/b")),
            row(accounts[3], ada, play(ada_team, "plays/a")),  # the same (user, role, writer): cached
            row(accounts[4], ada, play(bob_team, "plays/b")),  # and refused again
            row(accounts[5], viewer, MANUAL),  # viewers are not assigned by hand
        ],
        metadata=bearer(),
    )
    assert [(o[1], o[4]) for o in outcomes(reply)] == [
        (R.RESULT_SET, ""),
        (R.RESULT_FAILED, "NOT_IN_PLAY_TEAM"),
        (R.RESULT_SET, ""),
        (R.RESULT_SET, ""),
        (R.RESULT_FAILED, "NOT_IN_PLAY_TEAM"),
        (R.RESULT_FAILED, "LICENSE_NOT_ELIGIBLE"),
    ]
    assert (reply.changed_count, reply.failed_count) == (3, 3)
    # A failed row carries the code SetAssignment would have answered with: a refusal, here.
    refused = code_pb2.FAILED_PRECONDITION
    assert [o.code for o in reply.outcomes] == [0, refused, 0, 0, refused, refused]
    assert [holder(api, a) is None for a in accounts] == [False, True, False, False, True, True]

    # The request's writer is checked for rows without one, each row's for the others.
    denied = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(rows=[row(acct(), ada), row(acct(), bob, INTEGRATION)], source=MANUAL),
        metadata=bearer(ada.id, roles=()),  # a practitioner: MANUAL yes, INTEGRATION no
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    reserved = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(
            rows=[row(acct(), ada), row(acct(), bob, pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_REASSIGNMENT))],
            source=INTEGRATION,
        ),
        metadata=bearer(),
    )
    assert (reserved.code, reserved.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "SOURCE_RESERVED")
    malformed = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(
            rows=[
                row(acct(), ada, pb.WriteSource(source_ref="no source")),
                row(acct(), ada, pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_PLAY, play_team="teams/x")),
            ],
            source=INTEGRATION,
        ),
        metadata=bearer(),
    )
    assert malformed.violation_reasons == {
        "rows[0].source.source": "REQUIRED",
        "rows[1].source.play_team": "RESOURCE_NAME_INVALID",
    }
    assert listed(api, user=name(bob)) == [accounts[2]]  # nothing of the refused calls


def test_a_batch_of_rows_that_all_name_their_writer_needs_no_request_source(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    team = team_of(api, ada)
    a1, a2 = acct(), acct()
    reply = batch(api, [row(a1, ada, play(team, "plays/a")), row(a2, ada, INTEGRATION)])
    assert [o[1] for o in outcomes(reply)] == [R.RESULT_SET, R.RESULT_SET]
    assert holder(api, a2) == (name(ada), pb.ASSIGNMENT_SOURCE_INTEGRATION, "jobs/etm-1")
    missing = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(rows=[row(acct(), ada, INTEGRATION), row(acct(), ada)]),
        metadata=RULES,
    )
    assert missing.violation_reasons == {"source.source": "REQUIRED"}


def test_a_row_request_id_is_applied_once_whatever_batch_it_comes_in(users_api):
    api = users_api()
    ada, bob, cat = (add_user(api.db, f"{n}@example.com") for n in ("ada", "bob", "cat"))
    team = team_of(api, ada, bob, cat)
    a1, a2, a3 = acct(), acct(), acct()
    r1, r2, r3, r4 = (str(uuid.uuid4()) for _ in range(4))
    first = batch(
        api,
        [
            row(a1, ada, play(team, "plays/one"), r1),
            row(a2, bob, play(team, "plays/two")),
            row(a3, bob, play(team, "plays/one"), r2),
        ],
    )
    assert outcomes(first) == [
        (0, R.RESULT_SET, name(ada), "", ""),
        (1, R.RESULT_SET, name(bob), "", ""),
        (2, R.RESULT_SET, name(bob), "", ""),
    ]
    # The holder changes in between: a retry of r1 must not put ada back.
    api.assignments.SetAssignment(
        pb.SetAssignmentRequest(account_id=a1, role=CSM, user=pb.UserRef(user=name(cat)), source=INTEGRATION),
        metadata=bearer(),
    )
    # A batch of another composition: r1 again (now at row 1), a new row r3, r2 again.
    second = batch(
        api,
        [
            row(a2, cat, play(team, "plays/two"), r3),
            row(a1, ada, play(team, "plays/one"), r1),
            row(a3, bob, play(team, "plays/one"), r2),
        ],
    )
    assert outcomes(second) == [
        (0, R.RESULT_SET, name(cat), name(bob), ""),
        (1, R.RESULT_SET, name(ada), "", ""),  # the first answer, as it was
        (2, R.RESULT_SET, name(bob), "", ""),
    ]
    assert holder(api, a1) == (name(cat), pb.ASSIGNMENT_SOURCE_INTEGRATION, "jobs/etm-1")
    assert [h[0] for h in history(api, a1)] == [name(ada), name(cat)]  # not applied again
    assert [h[0] for h in history(api, a3)] == [name(bob)]
    # The same row written with its writer as the request's source is the same row.
    same = batch(api, [row(a1, ada, request_id=r1)], source=play(team, "plays/one"))
    assert outcomes(same) == [(0, R.RESULT_SET, name(ada), "", "")]
    # Other content under a known request id fails that row alone, and changes nothing.
    reused = batch(
        api,
        [
            row(a1, bob, play(team, "plays/one"), r1),
            row(a3, ada, play(team, "plays/two"), r2),  # another writer is other content too
            row(acct(), ada, play(team, "plays/one"), r4),
        ],
    )
    assert [(o.row, o.result, o.reason, o.code) for o in reused.outcomes] == [
        (0, R.RESULT_FAILED, "REQUEST_ID_REUSED", code_pb2.INVALID_ARGUMENT),
        (1, R.RESULT_FAILED, "REQUEST_ID_REUSED", code_pb2.INVALID_ARGUMENT),
        (2, R.RESULT_SET, "", 0),
    ]
    assert (holder_user(api, a1), holder_user(api, a3)) == (name(cat), name(bob))
    # A whole batch replayed row by row answers as it did.
    again = [
        row(a2, cat, play(team, "plays/two"), r3),
        row(a1, ada, play(team, "plays/one"), r1),
        row(a3, bob, play(team, "plays/one"), r2),
    ]
    assert batch(api, again) == second
    assert [h[0] for h in history(api, a2)] == [name(bob), name(cat)]


def test_a_failed_row_records_nothing_and_is_tried_again(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    account, request_id = acct(), str(uuid.uuid4())
    late = pb.AssignmentRow(
        account_id=account,
        role=CSM,
        user=pb.UserRef(email="late@example.com"),
        source=INTEGRATION,
        request_id=request_id,
    )
    failed = batch(api, [late, row(acct(), ada, INTEGRATION, str(uuid.uuid4()))])
    assert [(o.result, o.reason, o.code) for o in failed.outcomes] == [
        (R.RESULT_FAILED, "USER_NOT_FOUND", code_pb2.NOT_FOUND),
        (R.RESULT_SET, "", 0),
    ]
    newcomer = add_user(api.db, "late@example.com")
    retried = batch(api, [late])
    assert outcomes(retried) == [(0, R.RESULT_SET, name(newcomer), "", "")]
    assert holder_user(api, account) == name(newcomer)


def test_row_request_ids_are_uuids_and_unique_in_a_request(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    same, accounts = str(uuid.uuid4()), [acct() for _ in range(4)]
    bad = call_fails(
        api.assignments.BatchSetAssignments,
        pb.BatchSetAssignmentsRequest(
            rows=[
                row(accounts[0], ada, request_id=same),
                row(accounts[1], ada, request_id="row-1"),
                row(accounts[2], ada, request_id=same),
                row(accounts[3], ada),
            ],
            source=INTEGRATION,
        ),
        metadata=RULES,
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.violation_reasons == {
        "rows[1].request_id": "REQUEST_ID_INVALID",
        "rows[2].request_id": "REQUEST_ID_DUPLICATE",
    }
    assert "rows[0]" in bad.field_violations["rows[2].request_id"]
    assert [holder(api, a) for a in accounts] == [None] * 4


def test_a_failed_row_carries_the_code_set_assignment_answers_with(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com", first_name="Jo", last_name="Doe")
    add_user(api.db, "jo2@example.com", first_name="Jo", last_name="Doe")
    api.assignments.CreateRole(
        pb.CreateRoleRequest(
            role=pb.Role(key="territory_owner", display_name="Territory", source=pb.ROLE_SOURCE_INTEGRATION_ONLY)
        ),
        metadata=bearer(),
    )
    rows = [
        pb.AssignmentRow(account_id=acct(), role="roles/nope", user=pb.UserRef(user=name(ada))),
        pb.AssignmentRow(account_id=acct(), role=CSM, user=pb.UserRef(email="who@example.com")),
        pb.AssignmentRow(account_id=acct(), role=CSM, user=pb.UserRef(full_name="Jo Doe")),
        pb.AssignmentRow(account_id="a\x01", role=CSM, user=pb.UserRef(user=name(ada))),
        pb.AssignmentRow(account_id=acct(), role="roles/territory_owner", user=pb.UserRef(user=name(ada))),
    ]
    reply = batch(api, rows, source=MANUAL, metadata=bearer())
    got = [(o.reason, o.code) for o in reply.outcomes]
    assert got == [
        ("ROLE_NOT_FOUND", code_pb2.NOT_FOUND),
        ("USER_NOT_FOUND", code_pb2.NOT_FOUND),
        ("USER_AMBIGUOUS", code_pb2.FAILED_PRECONDITION),
        ("INVALID_REQUEST", code_pb2.INVALID_ARGUMENT),
        ("ROLE_INTEGRATION_ONLY", code_pb2.FAILED_PRECONDITION),
    ]
    for r, outcome in zip(rows, reply.outcomes, strict=True):
        single = call_fails(
            api.assignments.SetAssignment,
            pb.SetAssignmentRequest(account_id=r.account_id, role=r.role, user=r.user, source=MANUAL),
            metadata=bearer(),
        )
        assert (single.code.value[0], single.reason) == (outcome.code, outcome.reason)
