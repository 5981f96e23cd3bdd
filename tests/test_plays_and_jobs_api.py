"""PlayService and JobService first cut: Get and List from their own tables."""

from __future__ import annotations

import uuid

import grpc

from services.rules.app import SPEC as RULES
from services.rules.domain.model import EventType, PlayStatus
from services.sync.app import SPEC as SYNC
from services.sync.domain.model import JobType
from steward.rules.v1 import events_pb2, plays_pb2, plays_pb2_grpc
from steward.sync.v1 import jobs_pb2, jobs_pb2_grpc
from tests.errors import call_fails
from tests.seed import add_job, add_play


def _all_pages(call, request, field, metadata):
    items, token = [], ""
    while True:
        request.page_token = token
        reply = call(request, metadata=metadata)
        items += list(getattr(reply, field))
        token = reply.next_page_token
        if not token:
            return items


def test_list_plays_is_empty_on_a_fresh_database(serve, admin):
    stub = plays_pb2_grpc.PlayServiceStub(serve(RULES).channel)
    reply = stub.ListPlays(plays_pb2.ListPlaysRequest(), metadata=admin)
    assert list(reply.plays) == [] and reply.next_page_token == ""


def test_list_plays_pages_by_name_and_filters_by_status(serve, admin):
    running = serve(RULES)
    stub = plays_pb2_grpc.PlayServiceStub(running.channel)
    for i in range(5):
        add_play(running.db, f"Play {i}", status=PlayStatus.ACTIVE if i % 2 == 0 else PlayStatus.PAUSED)
    every = _all_pages(stub.ListPlays, plays_pb2.ListPlaysRequest(page_size=2), "plays", admin)
    assert [p.display_name for p in every] == [f"Play {i}" for i in range(5)]
    paused = _all_pages(
        stub.ListPlays, plays_pb2.ListPlaysRequest(page_size=1, status=plays_pb2.PLAY_STATUS_PAUSED), "plays", admin
    )
    assert [p.display_name for p in paused] == ["Play 1", "Play 3"]
    assert all(p.status == plays_pb2.PLAY_STATUS_PAUSED for p in paused)


def test_get_play_round_trips_the_trigger(serve, admin):
    running = serve(RULES)
    stub = plays_pb2_grpc.PlayServiceStub(running.channel)
    play = add_play(running.db, "Onboarding handoff", event_type=EventType.LIFECYCLE_STAGE_CHANGED)
    got = stub.GetPlay(plays_pb2.GetPlayRequest(name=f"plays/{play.id}"), metadata=admin)
    assert got.trigger.event_type == events_pb2.EVENT_TYPE_LIFECYCLE_STAGE_CHANGED
    assert got.owner == f"users/{play.owner_id}" and got.version == 1


def test_unknown_play_and_unknown_status_filter(serve, admin):
    stub = plays_pb2_grpc.PlayServiceStub(serve(RULES).channel)
    missing = call_fails(stub.GetPlay, plays_pb2.GetPlayRequest(name=f"plays/{uuid.uuid4()}"), metadata=admin)
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "PLAY_NOT_FOUND")
    # A client built from a newer contract may send a value this server does not know.
    bad_enum = call_fails(stub.ListPlays, plays_pb2.ListPlaysRequest(status=99), metadata=admin)  # type: ignore[arg-type]
    assert bad_enum.violation_reasons == {"status": "ENUM_VALUE_INVALID"}


def test_list_jobs_filters_by_type_and_validates_paging(serve, admin):
    running = serve(SYNC)
    stub = jobs_pb2_grpc.JobServiceStub(running.channel)
    assert list(stub.ListJobs(jobs_pb2.ListJobsRequest(), metadata=admin).jobs) == []
    add_job(running.db, "ETM nightly")
    add_job(running.db, "CSV upload", job_type=JobType.FILE_UPLOAD)
    etm = stub.ListJobs(jobs_pb2.ListJobsRequest(type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT), metadata=admin)
    assert [j.display_name for j in etm.jobs] == ["ETM nightly"]
    assert etm.jobs[0].state == jobs_pb2.JOB_STATE_DRAFT
    failure = call_fails(stub.ListJobs, jobs_pb2.ListJobsRequest(page_size=5000), metadata=admin)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in failure.field_violations
    failure = call_fails(stub.ListJobs, jobs_pb2.ListJobsRequest(page_token="nope"), metadata=admin)
    assert "page_token" in failure.field_violations


def test_get_job(serve, admin):
    running = serve(SYNC)
    stub = jobs_pb2_grpc.JobServiceStub(running.channel)
    job = add_job(running.db, "ETM nightly")
    got = stub.GetJob(jobs_pb2.GetJobRequest(name=f"jobs/{job.id}"), metadata=admin)
    assert (got.display_name, got.type) == ("ETM nightly", jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT)
    missing = call_fails(stub.GetJob, jobs_pb2.GetJobRequest(name=f"jobs/{uuid.uuid4()}"), metadata=admin)
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
