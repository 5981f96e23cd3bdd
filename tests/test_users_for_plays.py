"""What the rules service (SuccessPlays) needs from the users service: ListUsers by email,
CountAssignments for round-robin, and a play's owner counted as active when the play creates a task."""

from __future__ import annotations

import itertools
import uuid

import grpc

from services.users.domain.model import UserStatus
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import events_pb2 as epb
from steward.users.v1 import users_pb2 as upb
from steward.users.v1 import work_pb2 as wpb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user

MANUAL = apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_MANUAL)
# The rules service's token: what plays do through the users service.
RULES = bearer("service:rules", roles=(), scopes=["users.read", "tasks.write", "resources.write", "assignments.write"])
_accounts = itertools.count()


def acct() -> str:
    return f"0015g00000PLY{next(_accounts):05d}"


def name(user) -> str:
    return f"users/{user.id}"


def emails_of(reply) -> list[str]:
    return [u.email for u in reply.users]


# ---- ListUsers(emails) ----------------------------------------------------------------------------


def test_list_users_by_primary_email_ignores_case_and_pages_with_the_filter(users_api, admin):
    api = users_api()
    bob = add_user(api.db, "Bob@Example.com")
    carol = add_user(api.db, "carol@example.com", alternative_emails=["ada@example.com"])
    add_user(api.db, "ada.other@example.com")
    dave = add_user(api.db, "dave@example.com")
    add_user(api.db, "erin@example.com")
    wanted = ["BOB@example.com", "  Dave@EXAMPLE.com ", "carol@example.COM", "ada@example.com", "nobody@example.com"]

    reply = api.users.ListUsers(upb.ListUsersRequest(emails=wanted), metadata=RULES)
    # Ordered by email as always; alternative emails (carol's ada@example.com) do not match.
    assert [u.name for u in reply.users] == [name(bob), name(carol), name(dave)]
    assert reply.next_page_token == ""

    pages, token = [], ""
    while True:
        page = api.users.ListUsers(upb.ListUsersRequest(emails=wanted, page_size=1, page_token=token), metadata=admin)
        pages.append(emails_of(page))
        token = page.next_page_token
        if not token:
            break
    assert pages == [["Bob@Example.com"], ["carol@example.com"], ["dave@example.com"]]

    first = api.users.ListUsers(upb.ListUsersRequest(emails=wanted, page_size=1), metadata=admin)
    # The same set of addresses, in another order and case, is the same query...
    same = api.users.ListUsers(
        upb.ListUsersRequest(
            emails=[e.upper() for e in reversed(wanted)], page_size=1, page_token=first.next_page_token
        ),
        metadata=admin,
    )
    assert emails_of(same) == ["carol@example.com"]
    # ...but a token cannot be reused without the filter, with another filter, or the other way round.
    for other in ([], ["bob@example.com"]):
        mismatch = call_fails(
            api.users.ListUsers,
            upb.ListUsersRequest(emails=other, page_size=1, page_token=first.next_page_token),
            metadata=admin,
        )
        assert mismatch.violation_reasons == {"page_token": "PAGE_TOKEN_MISMATCH"}
    unfiltered = api.users.ListUsers(upb.ListUsersRequest(page_size=1), metadata=admin)
    mismatch = call_fails(
        api.users.ListUsers,
        upb.ListUsersRequest(emails=wanted, page_size=1, page_token=unfiltered.next_page_token),
        metadata=admin,
    )
    assert mismatch.violation_reasons == {"page_token": "PAGE_TOKEN_MISMATCH"}


def test_email_filter_respects_show_deleted_and_takes_up_to_1000_addresses(users_api, admin):
    api = users_api()
    gone = add_user(api.db, "gone@example.com", status=UserStatus.DELETED)
    kept = add_user(api.db, "kept@example.com")
    assert emails_of(api.users.ListUsers(upb.ListUsersRequest(emails=["GONE@example.com"]), metadata=admin)) == []
    with_deleted = api.users.ListUsers(
        upb.ListUsersRequest(emails=["GONE@example.com"], show_deleted=True), metadata=admin
    )
    assert [u.name for u in with_deleted.users] == [name(gone)]
    many = [f"user{i}@example.com" for i in range(999)] + ["Kept@Example.com"]
    reply = api.users.ListUsers(upb.ListUsersRequest(emails=many), metadata=admin)
    assert [u.name for u in reply.users] == [name(kept)]


def test_email_filter_refuses_too_many_or_empty_addresses(users_api, admin):
    api = users_api()
    too_many = call_fails(
        api.users.ListUsers,
        upb.ListUsersRequest(emails=[f"u{i}@example.com" for i in range(1001)]),
        metadata=admin,
    )
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.violation_reasons == {"emails": "TOO_MANY"}
    empty = call_fails(api.users.ListUsers, upb.ListUsersRequest(emails=["a@example.com", "", "  "]), metadata=admin)
    assert empty.code == grpc.StatusCode.INVALID_ARGUMENT
    assert empty.violation_reasons == {"emails[1]": "REQUIRED", "emails[2]": "REQUIRED"}


# ---- CountAssignments -----------------------------------------------------------------------------


def _set(api, account, role, user):
    api.assignments.SetAssignment(
        apb.SetAssignmentRequest(account_id=account, role=role, user=apb.UserRef(user=name(user)), source=MANUAL),
        metadata=bearer(),
    )


def _counts(api, role, users, md=RULES) -> list[tuple[str, int]]:
    reply = api.assignments.CountAssignments(apb.CountAssignmentsRequest(role=role, users=users), metadata=md)
    return [(c.user, c.accounts) for c in reply.counts]


def test_count_assignments_per_user_in_request_order(users_api, admin):
    api = users_api()
    ada, bob, carol = (add_user(api.db, f"{n}@example.com") for n in ("ada", "bob", "carol"))
    accounts = [acct() for _ in range(4)]
    for account in accounts[:3]:
        _set(api, account, "roles/success_manager", ada)
    _set(api, accounts[3], "roles/success_manager", bob)
    _set(api, accounts[3], "roles/sales_manager", ada)  # another role: not counted
    stranger = f"users/{uuid.uuid4()}"

    requested = [name(carol), name(bob), name(ada), stranger, name(bob)]
    assert _counts(api, "roles/success_manager", requested) == [
        (name(carol), 0),
        (name(bob), 1),
        (name(ada), 3),
        (stranger, 0),
        (name(bob), 1),
    ]
    assert _counts(api, "roles/sales_manager", [name(ada), name(bob)]) == [(name(ada), 1), (name(bob), 0)]

    # Counts follow the current holders: one account moves from ada to bob, another is cleared.
    _set(api, accounts[2], "roles/success_manager", bob)
    api.assignments.ClearAssignment(
        apb.ClearAssignmentRequest(account_id=accounts[0], role="roles/success_manager", source=MANUAL),
        metadata=admin,
    )
    assert _counts(api, "roles/success_manager", [name(ada), name(bob), name(carol)]) == [
        (name(ada), 1),
        (name(bob), 2),
        (name(carol), 0),
    ]
    # Anyone who may read assignments may count them: an active user too; a bare service account not.
    assert _counts(api, "roles/success_manager", [name(bob)], md=bearer(carol.id, roles=())) == [(name(bob), 2)]
    denied = call_fails(
        api.assignments.CountAssignments,
        apb.CountAssignmentsRequest(role="roles/success_manager", users=[name(bob)]),
        metadata=bearer("service:nobody", roles=()),
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED


def test_count_assignments_takes_up_to_1000_users(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    _set(api, acct(), "roles/success_manager", ada)
    users = [f"users/{uuid.uuid4()}" for _ in range(999)] + [name(ada)]
    counts = _counts(api, "roles/success_manager", users)
    assert len(counts) == 1000 and counts[-1] == (name(ada), 1) and sum(n for _, n in counts) == 1


def test_count_assignments_refuses_unknown_roles_and_bad_names(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    unknown = call_fails(
        api.assignments.CountAssignments,
        apb.CountAssignmentsRequest(role="roles/no_such_role", users=[name(ada)]),
        metadata=RULES,
    )
    assert (unknown.code, unknown.reason) == (grpc.StatusCode.NOT_FOUND, "ROLE_NOT_FOUND")
    bad = call_fails(
        api.assignments.CountAssignments,
        apb.CountAssignmentsRequest(role="roles/success_manager", users=[name(ada), "ada@example.com", "users/42"]),
        metadata=RULES,
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.violation_reasons == {"users[1]": "RESOURCE_NAME_INVALID", "users[2]": "RESOURCE_NAME_INVALID"}
    nothing = call_fails(api.assignments.CountAssignments, apb.CountAssignmentsRequest(), metadata=RULES)
    assert nothing.violation_reasons == {"role": "REQUIRED", "users": "REQUIRED"}
    too_many = call_fails(
        api.assignments.CountAssignments,
        apb.CountAssignmentsRequest(role="roles/success_manager", users=[name(ada)] * 1001),
        metadata=RULES,
    )
    assert too_many.violation_reasons == {"users": "TOO_MANY"}


# ---- CreateTask(created_by_play) ------------------------------------------------------------------


def _register_play(api, play_id, owner, visibility=wpb.VISIBILITY_SHARED, kind=wpb.RESOURCE_KIND_PLAY):
    api.resources.RegisterResource(
        wpb.RegisterResourceRequest(
            resource=wpb.Resource(
                kind=kind, id=play_id, display_name="Renewal play", owner=name(owner), visibility=visibility
            )
        ),
        metadata=RULES,
    )


def _task_by_play(api, play_id, assignee):
    return api.tasks.CreateTask(
        wpb.CreateTaskRequest(
            task=wpb.Task(account_id=acct(), title="Renewal call", assignee=name(assignee)),
            created_by_play=f"plays/{play_id}",
        ),
        metadata=RULES,
    )


def _user(api, user):
    return api.users.GetUser(upb.GetUserRequest(name=name(user)), metadata=bearer())


def _bulk(api, action, user):
    reply = api.users.BulkUserAction(upb.BulkUserActionRequest(action=action, users=[name(user)]), metadata=bearer())
    assert reply.done_count == 1, reply


def _events_until(api, last_type):
    events = []
    stream = api.events.WatchEvents(epb.WatchEventsRequest(), metadata=bearer())
    for event in stream:
        events.append(event.type)
        if event.type == last_type:
            stream.cancel()
            break
    return events


def test_a_task_from_a_play_records_its_owners_activity_even_when_disabled_or_deleted(users_api):
    api = users_api()
    owner, assignee = add_user(api.db, "owner@example.com"), add_user(api.db, "assignee@example.com")
    play_id = str(uuid.uuid4())
    _register_play(api, play_id, owner)  # shared: a bulk disable leaves it with its owner
    _bulk(api, upb.BULK_ACTION_DISABLE, owner)
    before = _user(api, owner)
    assert before.status == upb.USER_STATUS_DISABLED and not before.HasField("last_activity_time")
    assignee_before = _user(api, assignee)

    task = _task_by_play(api, play_id, assignee)
    assert task.created_by == f"plays/{play_id}"
    after = _user(api, owner)
    assert after.HasField("last_activity_time")
    assert after.last_activity_time.ToDatetime() >= task.create_time.ToDatetime()
    # Only the activity changed: still disabled, no profile update.
    assert after.status == upb.USER_STATUS_DISABLED and after.update_time == before.update_time
    assert _user(api, assignee).last_activity_time == assignee_before.last_activity_time
    # No event of its own: the task's creation is the only event of the call.
    assert _events_until(api, "task.created")[-2:] == ["user.disabled", "task.created"]

    _bulk(api, upb.BULK_ACTION_DELETE, owner)
    _task_by_play(api, play_id, assignee)
    deleted = _user(api, owner)
    assert deleted.status == upb.USER_STATUS_DELETED
    assert deleted.last_activity_time.ToDatetime() > after.last_activity_time.ToDatetime()


def test_a_task_from_an_unregistered_play_is_created_and_touches_nobody(users_api):
    api = users_api()
    owner, other, assignee = (add_user(api.db, f"{n}@example.com") for n in ("owner", "other", "assignee"))
    registered, unregistered = str(uuid.uuid4()), str(uuid.uuid4())
    _register_play(api, registered, owner)
    # A resource of another kind with the play's id is not the play.
    _register_play(api, unregistered, other, visibility=wpb.VISIBILITY_PRIVATE, kind=wpb.RESOURCE_KIND_SEGMENT)
    seen = {u.id: _user(api, u) for u in (owner, other, assignee)}

    task = _task_by_play(api, unregistered, assignee)
    assert task.created_by == f"plays/{unregistered}" and task.status == wpb.TASK_STATUS_OPEN
    for user in (owner, other, assignee):
        now = _user(api, user)
        assert not now.HasField("last_activity_time") and now.etag == seen[user.id].etag

    _task_by_play(api, registered, assignee)
    assert _user(api, owner).HasField("last_activity_time")
    assert not _user(api, other).HasField("last_activity_time")


def test_delete_resource_removes_it_once_and_says_whether_it_was_there(users_api, admin):
    api = users_api()
    owner = add_user(api.db, "owner@example.com")
    play_id = str(uuid.uuid4())
    _register_play(api, play_id, owner)
    outsider = bearer("service:other", roles=(), scopes=["users.read"])
    denied = call_fails(
        api.resources.DeleteResource, wpb.DeleteResourceRequest(name=f"resources/play/{play_id}"), metadata=outsider
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    request = wpb.DeleteResourceRequest(name=f"resources/play/{play_id}", request_id=str(uuid.uuid4()))
    assert api.resources.DeleteResource(request, metadata=RULES).deleted is True
    assert api.resources.DeleteResource(request, metadata=RULES).deleted is True  # a retry replays the answer
    again = wpb.DeleteResourceRequest(name=f"resources/play/{play_id}")
    assert api.resources.DeleteResource(again, metadata=RULES).deleted is False
    listed = api.resources.ListResources(wpb.ListResourcesRequest(owner=name(owner)), metadata=admin).resources
    assert list(listed) == []
    assert _events_until(api, "resource.deleted")[-2:] == ["resource.registered", "resource.deleted"]
    bad = call_fails(api.resources.DeleteResource, wpb.DeleteResourceRequest(name="resources/nope/1"), metadata=RULES)
    assert bad.violation_reasons == {"name": "RESOURCE_NAME_INVALID"}
