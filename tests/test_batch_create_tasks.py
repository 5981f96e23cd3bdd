"""TaskService.BatchCreateTasks: many tasks in one call, each as CreateTask would create it, each
idempotent on its own request_id and sharing CreateTask's records; failed items leave nothing."""

from __future__ import annotations

import itertools
import uuid

import grpc
from google.rpc import code_pb2

from services.users.domain.model import License, UserStatus
from steward.users.v1 import events_pb2 as epb
from steward.users.v1 import users_pb2 as upb
from steward.users.v1 import work_pb2 as pb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user

# What the rules service holds: tasks.write, but no user of the directory behind it.
RULES = bearer("service:rules", roles=(), scopes=["users.read", "tasks.write", "resources.write"])
_accounts = itertools.count()


def acct() -> str:
    return f"0015g00000TSK{next(_accounts):05d}"


def name(user) -> str:
    return f"users/{user.id}"


def item(assignee: str, title: str = "Kick-off call", account: str = "", play: str = "", request_id: str = ""):
    return pb.CreateTaskRequest(
        task=pb.Task(account_id=account or acct(), title=title, assignee=assignee),
        created_by_play=play,
        request_id=request_id or str(uuid.uuid4()),
    )


def batch(api, items, metadata=RULES):
    return api.tasks.BatchCreateTasks(pb.BatchCreateTasksRequest(requests=items), metadata=metadata)


def tasks_of(api, user) -> list[pb.Task]:
    return list(api.tasks.ListTasks(pb.ListTasksRequest(assignee=name(user), page_size=1000), metadata=RULES).tasks)


def events_before_sentinel(api) -> list[epb.Event]:
    """Every event in the stream, up to a resource.registered written now as a sentinel."""
    owner = add_user(api.db, f"sentinel-{uuid.uuid4()}@example.com")
    api.resources.RegisterResource(
        pb.RegisterResourceRequest(
            resource=pb.Resource(
                kind=pb.RESOURCE_KIND_REPORT, id=str(uuid.uuid4()), display_name="s", owner=name(owner)
            )
        ),
        metadata=RULES,
    )
    events = []
    stream = api.events.WatchEvents(epb.WatchEventsRequest(), metadata=bearer())
    for event in stream:
        if event.type == "resource.registered" and event.data["owner"] == name(owner):
            stream.cancel()
            break
        events.append(event)
    return events


def created_events(api) -> list[epb.Event]:
    return [e for e in events_before_sentinel(api) if e.type == "task.created"]


def register_play(api, owner) -> str:
    play_id = str(uuid.uuid4())
    api.resources.RegisterResource(
        pb.RegisterResourceRequest(
            resource=pb.Resource(kind=pb.RESOURCE_KIND_PLAY, id=play_id, display_name="Play", owner=name(owner))
        ),
        metadata=RULES,
    )
    return f"plays/{play_id}"


def get_user(api, user) -> upb.User:
    return api.users.GetUser(upb.GetUserRequest(name=name(user)), metadata=bearer())


def test_a_batch_creates_every_task_as_create_task_would(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    owner, bystander = add_user(api.db, "owner@example.com"), add_user(api.db, "bystander@example.com")
    play = register_play(api, owner)
    unregistered = f"plays/{uuid.uuid4()}"
    owner_before, bystander_before = get_user(api, owner), get_user(api, bystander)
    items = [
        item(name(ada), "  Kick-off call  ", account="ACC-1"),
        item(name(bob), "Renewal prep", account="ACC-2", play=play),
        item(name(ada), "QBR", account="ACC-3", play=unregistered),
    ]
    reply = batch(api, items)

    assert (reply.created_count, reply.failed_count) == (3, 0)
    assert [o.index for o in reply.outcomes] == [0, 1, 2]
    assert all(o.HasField("task") and o.code == 0 and o.reason == "" for o in reply.outcomes)
    first, by_play, by_other_play = (o.task for o in reply.outcomes)
    assert (first.title, first.account_id, first.assignee) == ("Kick-off call", "ACC-1", name(ada))
    assert first.status == pb.TASK_STATUS_OPEN and first.created_by == "service:rules"
    assert (by_play.created_by, by_other_play.created_by) == (play, unregistered)
    # The tasks are stored as answered.
    for task in (first, by_play, by_other_play):
        assert api.tasks.GetTask(pb.GetTaskRequest(name=task.name), metadata=RULES) == task
    # One create_time for the whole batch: ListTasks orders its tasks by id.
    assert sorted(t.title for t in tasks_of(api, ada)) == ["Kick-off call", "QBR"]
    assert {t.create_time.ToNanoseconds() for t in (first, by_play, by_other_play)} == {
        first.create_time.ToNanoseconds()
    }
    # One task.created event per task, as CreateTask writes them.
    events = created_events(api)
    assert [(e.subject, e.data["assignee"], e.data["account_id"]) for e in events] == [
        (t.name, t.assignee, t.account_id) for t in (first, by_play, by_other_play)
    ]
    assert {e.actor for e in events} == {"service:rules"}
    # The registered play's owner was active now; nobody else changed.
    owner_after = get_user(api, owner)
    assert owner_after.last_activity_time.ToDatetime() >= by_play.create_time.ToDatetime()
    assert not owner_before.HasField("last_activity_time")
    assert owner_after.update_time == owner_before.update_time and owner_after.etag != owner_before.etag
    assert get_user(api, bystander) == bystander_before


def test_failed_items_leave_nothing_and_the_others_apply(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    gone = add_user(api.db, "gone@example.com", status=UserStatus.DISABLED)
    deleted = add_user(api.db, "deleted@example.com", status=UserStatus.DELETED)
    invited = add_user(api.db, "invited@example.com", status=UserStatus.CREATED)
    owner = add_user(api.db, "owner@example.com")
    play = register_play(api, owner)
    ghost = f"users/{uuid.uuid4()}"
    items = [
        item(name(ada), "Call"),
        item(ghost, "Call", play=play),  # unknown user: the play's owner must not be touched either
        item(name(gone), "Call"),
        item(name(ada), "   "),
        item(name(ada), "x" * 301),
        item(name(ada), "Call", account=" "),
        item("people/1", "Call"),
        item(name(deleted), "Call"),
        item(name(invited), "Call"),
        item(name(ada), "Call", play="plays/not-a-uuid"),
    ]
    reply = batch(api, items)

    got = [(o.index, o.code, o.reason, o.HasField("task")) for o in reply.outcomes]
    assert got == [
        (0, 0, "", True),
        (1, code_pb2.NOT_FOUND, "USER_NOT_FOUND", False),
        (2, code_pb2.FAILED_PRECONDITION, "USER_NOT_ELIGIBLE", False),
        (3, code_pb2.INVALID_ARGUMENT, "TITLE_INVALID", False),
        (4, code_pb2.INVALID_ARGUMENT, "TITLE_INVALID", False),
        (5, code_pb2.INVALID_ARGUMENT, "ACCOUNT_ID_INVALID", False),
        (6, code_pb2.INVALID_ARGUMENT, "RESOURCE_NAME_INVALID", False),
        (7, code_pb2.FAILED_PRECONDITION, "USER_NOT_ELIGIBLE", False),
        (8, 0, "", True),  # an invited user may be handed work, as with CreateTask
        (9, code_pb2.INVALID_ARGUMENT, "RESOURCE_NAME_INVALID", False),
    ]
    assert (reply.created_count, reply.failed_count) == (2, 8)
    assert reply.outcomes[1].description and ghost.removeprefix("users/") in reply.outcomes[1].description
    assert "task.title" in reply.outcomes[3].description and "DISABLED" in reply.outcomes[2].description
    # Each failure is what CreateTask answers for the same request.
    for index in (1, 2, 3, 5, 6, 7):
        single = call_fails(api.tasks.CreateTask, items[index], metadata=RULES)
        assert single.code.value[0] == reply.outcomes[index].code
        if single.reason != "INVALID_REQUEST":  # a call's reason for field violations; an item names the field
            assert single.reason == reply.outcomes[index].reason
    # Nothing of the failed items: two tasks, two events, the play's owner untouched.
    assert [t.name for t in tasks_of(api, ada)] == [reply.outcomes[0].task.name]
    assert tasks_of(api, gone) == []
    assert [e.subject for e in created_events(api)] == [reply.outcomes[i].task.name for i in (0, 8)]
    assert not get_user(api, owner).HasField("last_activity_time")

    # A failed item recorded nothing: once its assignee may work, the same item creates the task.
    api.users.ActivateUser(upb.ActivateUserRequest(name=name(gone)), metadata=bearer())
    again = batch(api, [items[2]])
    assert again.created_count == 1 and again.outcomes[0].task.assignee == name(gone)


def test_each_item_is_idempotent_across_batches(users_api):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    a, b, c = item(name(ada), "A"), item(name(bob), "B"), item(name(ada), "C")
    first = batch(api, [a, b])
    # A retry of another composition: b again (applied before), c new, and b's id with other fields.
    changed = pb.CreateTaskRequest()
    changed.CopyFrom(a)
    changed.task.title = "A, renamed"
    second = batch(api, [c, b, changed])

    assert second.outcomes[1].task == first.outcomes[1].task  # answered from the record
    assert second.outcomes[0].HasField("task") and second.outcomes[0].task.title == "C"
    reused = second.outcomes[2]
    assert (reused.index, reused.code, reused.reason) == (2, code_pb2.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    assert not reused.HasField("task")
    assert (second.created_count, second.failed_count) == (2, 1)
    assert sorted(t.title for t in tasks_of(api, ada) + tasks_of(api, bob)) == ["A", "B", "C"]
    assert len(created_events(api)) == 3
    # The whole batch again: every item answered as first, nothing more created.
    assert batch(api, [a, b]) == first
    assert len(tasks_of(api, ada) + tasks_of(api, bob)) == 3


def test_items_share_create_task_records_both_ways(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    single_first = item(name(ada), "Created alone")
    alone = api.tasks.CreateTask(single_first, metadata=RULES)
    batch_first = item(name(ada), "Created in a batch")
    in_batch = batch(api, [single_first, batch_first])
    # A CreateTask applied before answers its item with the same task.
    assert in_batch.outcomes[0].task == alone
    created = in_batch.outcomes[1].task
    # An item applied before answers a CreateTask with the same request.
    assert api.tasks.CreateTask(batch_first, metadata=RULES) == created
    assert sorted(t.name for t in tasks_of(api, ada)) == sorted([alone.name, created.name])
    assert len(created_events(api)) == 2
    # Other fields under those ids are refused, either way.
    other = pb.CreateTaskRequest()
    other.CopyFrom(batch_first)
    other.task.title = "Something else"
    refused = call_fails(api.tasks.CreateTask, other, metadata=RULES)
    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    other.CopyFrom(single_first)
    other.task.account_id = "ANOTHER"
    reply = batch(api, [other])
    assert (reply.outcomes[0].code, reply.outcomes[0].reason) == (code_pb2.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    assert len(tasks_of(api, ada)) == 2


def test_request_problems_are_field_violations_and_create_nothing(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    empty = call_fails(api.tasks.BatchCreateTasks, pb.BatchCreateTasksRequest(), metadata=RULES)
    assert (empty.code, empty.violation_reasons) == (grpc.StatusCode.INVALID_ARGUMENT, {"requests": "REQUIRED"})
    one = item(name(ada))
    too_many = call_fails(api.tasks.BatchCreateTasks, pb.BatchCreateTasksRequest(requests=[one] * 1001), metadata=RULES)
    assert (too_many.code, too_many.violation_reasons) == (grpc.StatusCode.INVALID_ARGUMENT, {"requests": "TOO_MANY"})
    no_id = item(name(ada))
    no_id.request_id = ""
    bad_id = item(name(ada), request_id="not-a-uuid")
    twice = item(name(ada), "Twice", request_id=one.request_id)
    bad = call_fails(
        api.tasks.BatchCreateTasks,
        pb.BatchCreateTasksRequest(requests=[one, no_id, bad_id, twice, item(name(ada))]),
        metadata=RULES,
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert bad.violation_reasons == {
        "requests[1].request_id": "REQUIRED",
        "requests[2].request_id": "REQUEST_ID_INVALID",
        "requests[3].request_id": "REQUEST_ID_DUPLICATE",
    }
    assert "requests[0]" in bad.field_violations["requests[3].request_id"]
    assert tasks_of(api, ada) == [] and created_events(api) == []
    # 1,000 is allowed, in one call.
    full = batch(api, [item(name(ada), f"T{i}", account="ACC-BIG") for i in range(1000)])
    assert full.created_count == 1000 and len({o.task.name for o in full.outcomes}) == 1000


def test_creating_tasks_needs_the_tasks_scope_or_work_on_accounts(users_api):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    viewer = add_user(api.db, "viewer@example.com", license=License.VIEWER)
    items = [item(name(ada))]
    for md in (
        bearer("service:sync", roles=(), scopes=["assignments.write", "users.read"]),
        bearer(viewer.id, roles=()),
    ):
        denied = call_fails(api.tasks.BatchCreateTasks, pb.BatchCreateTasksRequest(requests=items), metadata=md)
        assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "PERMISSION_DENIED")
    assert tasks_of(api, ada) == []
    # A practitioner works on accounts: their tasks are created by them.
    mine = batch(api, items, metadata=bearer(ada.id, roles=()))
    assert mine.outcomes[0].task.created_by == name(ada)
    # Even an item applied before is not answered to a caller who may not create tasks.
    denied = call_fails(
        api.tasks.BatchCreateTasks,
        pb.BatchCreateTasksRequest(requests=items),
        metadata=bearer("service:sync", roles=(), scopes=["users.read"]),
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
