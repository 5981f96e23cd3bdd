"""Requests no RPC may take (services/runtime/request_checks.py): out-of-range timestamps and
durations, NUL characters, runaway Structs. Unit tests of the checker, then the RPCs that used
to answer INTERNAL, through the real servers."""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.struct_pb2 import Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from services.runtime.errors import InvalidArgument
from services.runtime.request_checks import MAX_STRUCT_DEPTH, check
from steward.rules.v1 import events_pb2, plays_pb2
from steward.sync.v1 import jobs_pb2
from steward.users.v1 import assignments_pb2, work_pb2
from tests.errors import call_fails
from tests.plays_kit import account_event
from tests.test_sync_etm import sync_api  # noqa: F401  (a fixture)

FAR = 2**40  # seconds: year ~36,812


def violations(message) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as raised:
        check(message)
    return {v.field: v.reason for v in raised.value.field_violations}


def test_timestamps_outside_year_1_to_9999_are_named_by_their_path():
    request = events_pb2.PublishEventsRequest(
        events=[
            account_event("a"),
            events_pb2.AccountEvent(event_id="x", account_id="b", occurred_at=Timestamp(seconds=FAR)),
            events_pb2.AccountEvent(event_id="y", account_id="c", occurred_at=Timestamp(seconds=0, nanos=-1)),
        ]
    )
    assert violations(request) == {
        "events[1].occurred_at": "TIMESTAMP_OUT_OF_RANGE",
        "events[2].occurred_at": "TIMESTAMP_OUT_OF_RANGE",
    }
    check(events_pb2.PublishEventsRequest(events=[account_event("a")]))  # in range: nothing to say
    check(assignments_pb2.GetAccountTeamRequest(account_id="a", as_of=Timestamp(seconds=253_402_300_799)))


def test_nul_characters_are_refused_wherever_they_hide():
    nested = Struct()
    nested.update({"billing": {"city": "Par\x00is"}, "ok\x00key": 1})
    request = events_pb2.PublishEventsRequest(
        events=[events_pb2.AccountEvent(event_id="e\x00", account_id="a", attributes=nested)]
    )
    assert violations(request) == {
        "events[0].event_id": "STRING_HAS_NUL",
        "events[0].attributes.billing.city": "STRING_HAS_NUL",
        "events[0].attributes.ok\x00key": "STRING_HAS_NUL",
    }
    rows = assignments_pb2.BatchSetAssignmentsRequest(
        rows=[
            assignments_pb2.AssignmentRow(account_id="a", role="roles/x", user=assignments_pb2.UserRef(email="a\x00@b"))
        ]
    )
    assert violations(rows) == {"rows[0].user.email": "STRING_HAS_NUL"}


def test_structs_are_bounded_in_depth_and_hold_only_finite_numbers():
    deep = Value(string_value="bottom")
    for _ in range(MAX_STRUCT_DEPTH + 2):
        outer = Value()
        outer.struct_value.fields["x"].CopyFrom(deep)
        deep = outer
    event = events_pb2.AccountEvent(event_id="e", account_id="a")
    event.attributes.fields["deep"].CopyFrom(deep)
    event.attributes.fields["nan"].number_value = float("nan")
    event.attributes.fields["inf"].number_value = float("inf")
    found = violations(events_pb2.PublishEventRequest(event=event))
    assert found["event.attributes.nan"] == found["event.attributes.inf"] == "NUMBER_INVALID"
    assert "STRUCT_TOO_DEEP" in found.values()


def test_durations_are_bounded_and_signed_consistently():
    # No request carries a Duration today; the checker is held to protobuf's bounds for when one does.
    assert violations(Duration(seconds=315_576_000_001)) == {"": "DURATION_OUT_OF_RANGE"}
    assert violations(Duration(seconds=5, nanos=-1)) == {"": "DURATION_OUT_OF_RANGE"}
    check(Duration(seconds=-5, nanos=-1))


# --- through the servers ---------------------------------------------------------------


def test_rules_rpcs_refuse_out_of_range_times_with_the_field(rules_api, admin):
    api = rules_api
    far = Timestamp(seconds=FAR)
    event = account_event("acct-far")
    event.occurred_at.CopyFrom(far)
    cases = [
        (api.events.PublishEvent, events_pb2.PublishEventRequest(event=event), "event.occurred_at"),
        (api.events.PublishEvents, events_pb2.PublishEventsRequest(events=[event]), "events[0].occurred_at"),
        (api.plays.ListPlayRuns, plays_pb2.ListPlayRunsRequest(start_time=far), "start_time"),
        (api.plays.ListPlayRuns, plays_pb2.ListPlayRunsRequest(end_time=far), "end_time"),
        (
            api.plays.TestPlay,
            plays_pb2.TestPlayRequest(events=[event]),
            "events[0].occurred_at",
        ),
        (
            api.users.assignments.GetAccountTeam,
            assignments_pb2.GetAccountTeamRequest(account_id="acct-far", as_of=far),
            "as_of",
        ),
    ]
    for method, request, field in cases:
        failed = call_fails(method, request, metadata=admin)
        assert (failed.code, failed.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_INVALID"), method
        assert failed.violation_reasons == {field: "TIMESTAMP_OUT_OF_RANGE"}, method
    # Nothing was recorded by the refused publishes.
    missing = call_fails(
        api.events.GetAccountEvent,
        events_pb2.GetAccountEventRequest(name=f"accountEvents/{event.event_id}"),
        metadata=admin,
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND


def test_a_nul_in_an_attribute_is_refused_on_every_database(rules_api, admin):
    event = account_event("acct-nul", {"name": "Acme\x00"})
    failed = call_fails(rules_api.events.PublishEvent, events_pb2.PublishEventRequest(event=event), metadata=admin)
    assert failed.code == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.violation_reasons == {"event.attributes.name": "STRING_HAS_NUL"}
    task = work_pb2.Task(account_id="acct-nul", title="Call\x00", assignee="users/x")
    failed = call_fails(
        rules_api.users.tasks.CreateTask,
        work_pb2.CreateTaskRequest(task=task, request_id=str(uuid.uuid4())),
        metadata=admin,
    )
    assert failed.violation_reasons == {"task.title": "STRING_HAS_NUL"}


def test_etm_only_rpcs_on_an_upload_job_fail_the_precondition(sync_api, admin):  # noqa: F811
    job = sync_api.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(display_name=f"Upload {uuid.uuid4().hex[:6]}", type=jobs_pb2.JOB_TYPE_FILE_UPLOAD)
        ),
        metadata=admin,
    )
    for method, request in (
        (sync_api.jobs.ValidateJob, jobs_pb2.ValidateJobRequest(name=job.name)),
        (sync_api.jobs.PreviewJob, jobs_pb2.PreviewJobRequest(name=job.name)),
    ):
        failed = call_fails(method, request, metadata=admin)
        assert (failed.code, failed.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "JOB_READS_NO_CONNECTION"), method
        assert failed.error_metadata["job"] == job.name
