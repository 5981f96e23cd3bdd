"""Tasks, owned resources, and the event stream that reports every change."""

from __future__ import annotations

import uuid

import grpc

from services.users.domain.model import License, UserStatus
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import events_pb2 as epb
from steward.users.v1 import work_pb2 as pb
from tests.conftest import bearer
from tests.errors import call_fails
from tests.seed import add_user


def test_tasks_are_created_listed_and_completed_by_their_assignee(users_api, admin):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    task = api.tasks.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(account_id="ACC-1", title="Kick-off call", assignee=f"users/{ada.id}")),
        metadata=admin,
    )
    assert (task.status, task.created_by) == (pb.TASK_STATUS_OPEN, "admin-tests")
    by_play = api.tasks.CreateTask(
        pb.CreateTaskRequest(
            task=pb.Task(account_id="ACC-2", title="Renewal prep", assignee=f"users/{ada.id}"),
            created_by_play=f"plays/{uuid.uuid4()}",
        ),
        metadata=admin,
    )
    assert by_play.created_by.startswith("plays/")
    mine = api.tasks.ListTasks(
        pb.ListTasksRequest(assignee=f"users/{ada.id}", status=pb.TASK_STATUS_OPEN), metadata=admin
    )
    assert [t.title for t in mine.tasks] == ["Kick-off call", "Renewal prep"]
    not_bobs = call_fails(
        api.tasks.CompleteTask, pb.CompleteTaskRequest(name=task.name), metadata=bearer(bob.id, roles=())
    )
    assert not_bobs.code == grpc.StatusCode.PERMISSION_DENIED
    done = api.tasks.CompleteTask(pb.CompleteTaskRequest(name=task.name), metadata=bearer(ada.id, roles=()))
    assert done.status == pb.TASK_STATUS_COMPLETED and done.HasField("complete_time")
    twice = call_fails(api.tasks.CompleteTask, pb.CompleteTaskRequest(name=task.name), metadata=admin)
    assert twice.reason == "TASK_COMPLETED"
    open_now = api.tasks.ListTasks(
        pb.ListTasksRequest(assignee=f"users/{ada.id}", status=pb.TASK_STATUS_OPEN), metadata=admin
    )
    assert [t.title for t in open_now.tasks] == ["Renewal prep"]


def test_tasks_need_a_title_and_an_assignee_who_can_work(users_api, admin):
    api = users_api()
    gone = add_user(api.db, "gone@example.com", status=UserStatus.DISABLED)
    empty = call_fails(
        api.tasks.CreateTask,
        pb.CreateTaskRequest(task=pb.Task(account_id="A", title=" ", assignee=f"users/{gone.id}")),
        metadata=admin,
    )
    assert empty.violation_reasons == {"task.title": "REQUIRED"}
    disabled = call_fails(
        api.tasks.CreateTask,
        pb.CreateTaskRequest(task=pb.Task(account_id="A", title="x", assignee=f"users/{gone.id}")),
        metadata=admin,
    )
    assert disabled.reason == "USER_NOT_ELIGIBLE"


def test_resources_are_registered_listed_and_handed_over(users_api, admin):
    api = users_api()
    ada, bob = add_user(api.db, "ada@example.com"), add_user(api.db, "bob@example.com")
    viewer = add_user(api.db, "v@example.com", license=License.VIEWER)
    plays = bearer("service:rules", roles=(), scopes=["resources.write"])
    campaign = api.resources.RegisterResource(
        pb.RegisterResourceRequest(
            resource=pb.Resource(
                kind=pb.RESOURCE_KIND_CAMPAIGN,
                id="c-1",
                display_name="Q4 renewal",
                owner=f"users/{ada.id}",
                visibility=pb.VISIBILITY_SHARED,
                campaign_status=pb.CAMPAIGN_STATUS_ACTIVE,
                senders=[f"users/{ada.id}"],
            )
        ),
        metadata=plays,
    )
    assert campaign.name == "resources/campaign/c-1" and list(campaign.senders) == [f"users/{ada.id}"]
    api.resources.RegisterResource(
        pb.RegisterResourceRequest(
            resource=pb.Resource(
                kind=pb.RESOURCE_KIND_SEGMENT, id="s-9", display_name="At risk", owner=f"users/{ada.id}"
            )
        ),
        metadata=bearer(ada.id, roles=()),
    )
    owned = api.resources.ListResources(pb.ListResourcesRequest(owner=f"users/{ada.id}"), metadata=admin)
    assert [r.name for r in owned.resources] == ["resources/campaign/c-1", "resources/segment/s-9"]
    moved = api.resources.UpdateResourceOwner(
        pb.UpdateResourceOwnerRequest(name="resources/segment/s-9", owner=f"users/{bob.id}"),
        metadata=bearer(ada.id, roles=()),
    )
    assert moved.owner == f"users/{bob.id}"
    not_hers = call_fails(
        api.resources.UpdateResourceOwner,
        pb.UpdateResourceOwnerRequest(name="resources/segment/s-9", owner=f"users/{ada.id}"),
        metadata=bearer(ada.id, roles=()),
    )
    assert not_hers.code == grpc.StatusCode.PERMISSION_DENIED
    viewers_cannot = call_fails(
        api.resources.RegisterResource,
        pb.RegisterResourceRequest(
            resource=pb.Resource(kind=pb.RESOURCE_KIND_REPORT, id="r", display_name="x", owner=f"users/{viewer.id}")
        ),
        metadata=bearer(viewer.id, roles=()),
    )
    assert viewers_cannot.code == grpc.StatusCode.PERMISSION_DENIED
    bad_name = call_fails(
        api.resources.UpdateResourceOwner,
        pb.UpdateResourceOwnerRequest(name="resources/widget/1", owner=f"users/{bob.id}"),
        metadata=admin,
    )
    assert bad_name.violation_reasons == {"name": "RESOURCE_NAME_INVALID"}


def _drain(stream, count):
    events = []
    for event in stream:
        events.append(event)
        if len(events) == count:
            stream.cancel()
            break
    return events


def test_every_change_is_an_event_and_the_stream_resumes_after_a_cursor(users_api, admin):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    bob = add_user(api.db, "bob@example.com")  # owns nothing, so may be disabled without a plan
    api.assignments.SetAssignment(
        apb.SetAssignmentRequest(
            account_id="ACC",
            role="roles/success_manager",
            user=apb.UserRef(user=f"users/{ada.id}"),
            source=apb.WriteSource(source=apb.ASSIGNMENT_SOURCE_MANUAL),
        ),
        metadata=admin,
    )
    api.tasks.CreateTask(
        pb.CreateTaskRequest(task=pb.Task(account_id="ACC", title="Call", assignee=f"users/{ada.id}")), metadata=admin
    )
    from steward.users.v1 import users_pb2

    api.users.DisableUser(users_pb2.DisableUserRequest(name=f"users/{bob.id}"), metadata=admin)
    first = _drain(api.events.WatchEvents(epb.WatchEventsRequest(), metadata=admin), 3)
    assert [e.type for e in first] == ["assignment.set", "task.created", "user.disabled"]
    assert first[0].data["user"] == f"users/{ada.id}" and first[0].data["attribute"] == "success_manager___tid"
    assert first[2].data["previous_status"] == "ACTIVE" and first[2].actor == "admin-tests"
    # Resume after the first: the next two, then whatever comes next, live.
    stream = api.events.WatchEvents(epb.WatchEventsRequest(after_cursor=first[0].cursor), metadata=admin)
    resumed = [next(stream), next(stream)]
    assert [e.cursor for e in resumed] == [e.cursor for e in first[1:]]
    api.users.ActivateUser(users_pb2.ActivateUserRequest(name=f"users/{bob.id}"), metadata=admin)
    live = next(stream)
    stream.cancel()
    assert live.type == "user.activated" and int(live.cursor) > int(first[2].cursor)
    only = _drain(api.events.WatchEvents(epb.WatchEventsRequest(types=["task.created"]), metadata=admin), 1)
    assert only[0].type == "task.created"


def test_watching_needs_the_events_scope_and_a_valid_cursor(users_api, admin):
    api = users_api()
    plain = add_user(api.db, "plain@example.com")
    denied = call_fails(
        lambda r, **kw: list(api.events.WatchEvents(r, **kw)),
        epb.WatchEventsRequest(),
        metadata=bearer(plain.id, roles=()),
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    bad = call_fails(
        lambda r, **kw: list(api.events.WatchEvents(r, **kw)),
        epb.WatchEventsRequest(after_cursor="abc"),
        metadata=admin,
    )
    assert bad.violation_reasons == {"after_cursor": "CURSOR_INVALID"}


def test_reports_and_campaigns_cannot_be_private(users_api, admin):
    api = users_api()
    ada = add_user(api.db, "ada@example.com")
    for kind in (pb.RESOURCE_KIND_REPORT, pb.RESOURCE_KIND_CAMPAIGN):
        failure = call_fails(
            api.resources.RegisterResource,
            pb.RegisterResourceRequest(
                resource=pb.Resource(
                    kind=kind, id="x", display_name="x", owner=f"users/{ada.id}", visibility=pb.VISIBILITY_PRIVATE
                )
            ),
            metadata=admin,
        )
        assert failure.violation_reasons == {"resource.visibility": "VISIBILITY_NOT_ALLOWED"}
