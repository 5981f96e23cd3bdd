"""OpenTelemetry traces across the services, through their real gRPC APIs: one trace from an account
event to the users write it caused (across the rules executor's asynchronous hop), a sync run's
batches under its RunJob call, the users event the write produced linked from the rules
consumer, and trace ids in trailers and logs. Spans go to an in-memory exporter."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.runtime import tracing
from steward.sync.v1 import jobs_pb2
from steward.users.v1 import events_pb2 as uepb
from steward.users.v1 import users_pb2 as upb
from steward.users.v1 import users_pb2_grpc
from tests.conftest import JWT_SECRET, bearer
from tests.otlp_receiver import OtlpReceiver
from tests.plays_kit import account_event, create_play, holder, person, publish, team_with, wait_processed
from tests.processes import users_process
from tests.test_sync_etm import connect, make_job, run, sync_api  # noqa: F401  (sync_api is a fixture)


@pytest.fixture(autouse=True)
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory, for the services this test starts (before any of them starts)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    yield exporter
    tracing.install(None)
    provider.shutdown()


def owned_play(api, md) -> str:
    """An active play making ada@example.com the success manager of every new account."""
    ada = person(api, "ada@example.com")
    team = team_with(api, md, "CS", ada)
    create_play(
        api,
        md,
        "Ada for every new account",
        [{"update_value": {"role": "roles/success_manager", "user": f"users/{ada.id}"}}],
        owner=ada,
        team=team,
    )
    return ada.id


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def wait_for_span(exporter: InMemorySpanExporter, name: str, timeout: float = 10.0) -> list[ReadableSpan]:
    deadline = time.monotonic() + timeout
    while not named(list(exporter.get_finished_spans()), name):
        assert time.monotonic() < deadline, f"no span {name!r}"
        time.sleep(0.05)
    return list(exporter.get_finished_spans())


def test_one_trace_from_an_account_event_to_the_users_write(rules_stack, admin, spans):
    api = rules_stack()
    ada = owned_play(api, admin)
    spans.clear()
    event = account_event("A1")
    publish(api, admin, event)
    wait_processed(api, admin, event.event_id)
    assert holder(api, admin, "A1") == f"users/{ada}"
    finished = wait_for_span(spans, "/steward.users.v1.AssignmentService/BatchSetAssignments")

    (published,) = named(finished, "/steward.rules.v1.AccountEventService/PublishEvents")
    trace_id = published.context.trace_id
    (executed,) = named(finished, "rules.execute_runs")
    assert executed.context.trace_id == trace_id  # the executor, later and on its own thread
    assert executed.parent is not None and executed.parent.span_id == published.context.span_id
    writes = named(finished, "/steward.users.v1.AssignmentService/BatchSetAssignments")
    server_write = next(s for s in writes if s.kind.name == "SERVER")
    client_write = next(s for s in writes if s.kind.name == "CLIENT")
    assert server_write.context.trace_id == client_write.context.trace_id == trace_id
    assert client_write.parent is not None and client_write.parent.span_id == executed.context.span_id

    # The users event the write produced carries the write's context; the rules consumer links to it.
    stream = api.users.events.WatchEvents(uepb.WatchEventsRequest(types=["assignment.set"]), metadata=admin, timeout=10)
    users_event = next(stream)
    stream.cancel()
    assert users_event.traceparent.split("-")[1] == format(trace_id, "032x")
    consumed = named(wait_for_span(spans, "rules.consume_users_events"), "rules.consume_users_events")
    linked = {link.context.trace_id for s in consumed for link in s.links}
    assert trace_id in linked


def test_runs_from_many_traces_are_executed_in_their_traces_or_linked_to_them(rules_stack, admin, spans):
    api = rules_stack()
    owned_play(api, admin)
    spans.clear()
    events = [account_event(f"A{i}") for i in range(3)]
    for event in events:
        publish(api, admin, event)  # three calls, three traces
    wait_processed(api, admin, *(e.event_id for e in events))
    finished = list(spans.get_finished_spans())
    traces = {s.context.trace_id for s in named(finished, "/steward.rules.v1.AccountEventService/PublishEvents")}
    assert len(traces) == 3
    covered = set()
    for batch in named(finished, "rules.execute_runs"):
        covered |= {link.context.trace_id for link in batch.links} | {batch.context.trace_id}
    assert traces <= covered


def test_a_span_continues_one_stored_context_and_links_to_many(spans):
    parents = []
    for _ in range(3):
        with tracing.span("caller"):
            parents.append(tracing.current_traceparent())
    with tracing.span("one", parents[:1]) as one:
        assert one.get_span_context().trace_id == int(parents[0].split("-")[1], 16)
    with tracing.span("many", [*parents, parents[0], "garbage"]) as many:
        pass
    with tracing.span("consumer", parents[:1], link=True) as consumer:
        pass
    finished = {s.name: s for s in spans.get_finished_spans()}
    assert finished["one"].parent.span_id == int(parents[0].split("-")[2], 16)
    assert finished["many"].parent is None
    assert sorted(link.context.trace_id for link in finished["many"].links) == sorted(
        int(p.split("-")[1], 16) for p in parents
    )
    assert many.get_span_context().trace_id not in {int(p.split("-")[1], 16) for p in parents}
    assert finished["consumer"].parent is None and len(finished["consumer"].links) == 1
    assert consumer.get_span_context().is_valid


def test_a_sync_run_hangs_under_its_run_job_call(sync_api, admin, spans):  # noqa: F811
    api, md = sync_api, admin
    connect(api, md)
    job = make_job(api, md)
    spans.clear()
    finished_run = run(api, md, job)
    assert finished_run.state == jobs_pb2.RUN_STATE_SUCCEEDED
    finished = wait_for_span(spans, "sync.run")
    (call,) = [s for s in named(finished, "/steward.sync.v1.JobService/RunJob") if s.kind.name == "SERVER"]
    trace_id = call.context.trace_id
    (sync_run,) = named(finished, "sync.run")
    assert sync_run.context.trace_id == trace_id
    assert sync_run.parent is not None and sync_run.parent.span_id == call.context.span_id
    for name in ("sync.settle", "sync.write_batch", "salesforce.request"):
        assert named(finished, name) and {s.context.trace_id for s in named(finished, name)} == {trace_id}, name
    writes = [
        s for s in named(finished, "/steward.users.v1.AssignmentService/BatchSetAssignments") if s.kind.name == "SERVER"
    ]
    assert writes and {s.context.trace_id for s in writes} == {trace_id}


def test_callers_see_the_trace_id_in_trailers_and_logs(users_api, admin, spans, capsys):
    api = users_api()
    _, call = api.users.ListUsers.with_call(upb.ListUsersRequest(), metadata=admin)
    trailers = dict(call.trailing_metadata())
    (server,) = [s for s in named(list(spans.get_finished_spans()), "/steward.users.v1.UserService/ListUsers")]
    assert trailers["x-trace-id"] == format(server.context.trace_id, "032x")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (logged,) = [line for line in lines if line.get("event") == "rpc" and line.get("method", "").endswith("ListUsers")]
    assert logged["trace_id"] == trailers["x-trace-id"] and len(logged["span_id"]) == 16


def test_tracing_off_adds_no_trailer_and_stores_no_context(users_api, admin, spans):
    tracing.install(None)
    api = users_api()
    _, call = api.users.ListUsers.with_call(upb.ListUsersRequest(), metadata=admin)
    assert "x-trace-id" not in dict(call.trailing_metadata())
    api.users.InviteUsers(upb.InviteUsersRequest(emails=["x@example.com"], license=upb.LICENSE_VIEWER), metadata=admin)
    stream = api.events.WatchEvents(uepb.WatchEventsRequest(), metadata=admin, timeout=10)
    assert next(stream).traceparent == ""
    stream.cancel()
    assert list(spans.get_finished_spans()) == []


@contextmanager
def exporting_users(databases, **otel: str) -> Iterator[tuple[OtlpReceiver, Callable[[], dict[str, str]]]]:
    """A stand-in collector, and a users service process exporting to it with only OTEL_* set;
    with a function making one ListUsers call and returning its trailers."""
    tracing.install(None)  # this process traces nothing: the spans come from the child
    with OtlpReceiver() as collector:
        env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, **otel}
        users, address = users_process(databases.url("users"), JWT_SECRET, 0, OTEL_BSP_SCHEDULE_DELAY="100", **env)
        channel = grpc.insecure_channel(address)
        stub = users_pb2_grpc.UserServiceStub(channel)

        def call() -> dict[str, str]:
            _, done = stub.ListUsers.with_call(upb.ListUsersRequest(), metadata=bearer())
            return dict(done.trailing_metadata())

        try:
            yield collector, call
        finally:
            channel.close()
            users.close()


def test_services_export_to_an_otlp_collector_configured_by_the_standard_variables(databases, spans):
    """A users service process with only OTEL_* set exports its spans over OTLP/HTTP to a stand-in
    collector, under its service name, with the trace id its caller saw in the trailers."""
    otel = {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1.0",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
    }
    with exporting_users(databases, **otel) as (collector, call):
        trace_id = call()["x-trace-id"]
        (listed,) = collector.wait_for("/steward.users.v1.UserService/ListUsers")
        assert (listed.service, listed.trace_id, listed.kind) == ("steward-users", trace_id, 2)  # 2: SERVER
    assert collector.requests >= 1


def test_sampling_follows_the_standard_variables(databases, spans):
    with exporting_users(databases, OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0") as (
        collector,
        call,
    ):
        trailers = [call() for _ in range(20)]
        # Not sampled: no span leaves the process, and the trailer still names the trace.
        assert all(len(t["x-trace-id"]) == 32 for t in trailers)
        time.sleep(0.5)
    assert collector.spans == []


def test_scim_requests_are_traced_and_their_events_carry_the_trace(users_api, admin, spans):
    from tests.scim_kit import scim_config, scim_of

    api = users_api(scim_config())
    scim_of(api).create_user("grace@acme.io")
    (created,) = named(list(spans.get_finished_spans()), "SCIM POST /Users")
    stream = api.events.WatchEvents(uepb.WatchEventsRequest(types=["user.created"]), metadata=admin, timeout=10)
    event = next(stream)
    stream.cancel()
    assert event.traceparent.split("-")[1:3] == [
        format(created.context.trace_id, "032x"),
        format(created.context.span_id, "016x"),
    ]


def test_a_bad_otel_setting_stops_the_start_with_a_plain_message(tmp_path):
    from tests.processes import free_port, python_module

    process = python_module(
        "services.users",
        "serve",
        env={
            "STEWARD_JWT_SECRET": JWT_SECRET,
            "STEWARD_DATA_DIR": str(tmp_path),
            "STEWARD_USERS_PORT": str(free_port()),
            "STEWARD_USERS_METRICS_PORT": "-1",
            "OTEL_TRACES_EXPORTER": "zipkin-please",
        },
    )
    try:
        assert process.finish(timeout=30) == 2
        assert any("OTEL_TRACES_EXPORTER" in line and "zipkin-please" in line for line in process.stderr)
        assert not any("Traceback" in line for line in process.stderr)
    finally:
        process.close()
