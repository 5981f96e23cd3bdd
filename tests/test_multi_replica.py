"""Two replicas of a service on one database: work that must happen once happens once.

- rules: both replicas execute runs, each those of its partitions, and the users-stream
  consumer runs in the lease holder only (two real processes, their Prometheus counters read
  over HTTP); a killed replica's work is taken over (tests/test_rules_partitions.py has more);
- users: the outbox stream served by either replica is the same gap-free sequence while both
  take writes (the e-mail outbox has its own test in test_email_delivery.py);
- sync: a scheduled run happens once per slot even when a replica acts on a stale view, and two
  replicas asked to run a job at once start one run.

Run against SQLite and, with STEWARD_TEST_DATABASE_URL, PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.runtime.leases import WorkerLease
from services.sync.adapters.users_client import SyncUsersClient
from services.sync.app import build_spec as sync_spec
from services.sync.config import SyncConfig
from services.sync.connectors import registry
from services.sync.service_layer.runner import JobRunner
from services.sync.service_layer.scheduler import Scheduler
from services.users.app import build_spec as users_spec
from services.users.config import UsersConfig
from steward.rules.v1 import events_pb2_grpc as rules_events_grpc
from steward.rules.v1 import plays_pb2, plays_pb2_grpc
from steward.sync.v1 import jobs_pb2
from steward.users.v1 import assignments_pb2, events_pb2, users_pb2_grpc, work_pb2
from tests.conftest import JWT_SECRET, RulesApi, UsersApi
from tests.plays_kit import account_event, create_play, person, publish, runs_of, team_with, wait_processed
from tests.processes import Process, free_port, rules_process
from tests.test_sync_etm import SyncApi, make_job, sync_api  # noqa: F401  (sync_api is a fixture)

pytestmark = pytest.mark.slow


# --- rules: two processes ---------------------------------------------------------------


@dataclass
class RulesReplica:
    """A rules process, reached through the same stubs as an in-process RulesApi."""

    process: Process
    address: str
    metrics_port: int
    users: UsersApi

    def __post_init__(self) -> None:
        self.channel = grpc.insecure_channel(self.address)
        self.plays = plays_pb2_grpc.PlayServiceStub(self.channel)
        self.events = rules_events_grpc.AccountEventServiceStub(self.channel)

    @property
    def api(self) -> RulesApi:
        return cast(RulesApi, self)

    def metric(self, name: str) -> float:
        """The sum of a counter's or gauge's samples on this replica's /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name in (name, f"{name}_total")
        )

    def close(self) -> None:
        self.channel.close()
        self.process.close()


def start_rules_replica(database_url: str, users: UsersApi) -> RulesReplica:
    metrics_port = free_port()
    process, address = rules_process(
        database_url,
        JWT_SECRET,
        users.running.address,
        STEWARD_RULES_METRICS_PORT=str(metrics_port),
        STEWARD_RULES_LEASE_SECONDS="2",
        STEWARD_RULES_RUN_RETRY_BASE_SECONDS="0.05",
        STEWARD_RULES_RUN_RETRY_MAX_SECONDS="0.5",
    )
    return RulesReplica(process, address, metrics_port, users)


def eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def per_replica(replicas: list[RulesReplica], metric: str) -> list[float]:
    return [replica.metric(metric) for replica in replicas]


def test_rules_replicas_execute_each_run_and_consume_each_change_once(databases, users_api, admin):
    users = users_api()
    url = databases.url("rules")
    replicas = [start_rules_replica(url, users)]
    replicas.append(start_rules_replica(url, users))  # after the first migrated the shared database
    try:
        one, two = replicas
        eventually(lambda: per_replica(replicas, "steward_partition_owned") == [8, 8], "the partitions are shared")
        owner, yara = person(one.api, "owner@example.com"), person(one.api, "yara@example.com")
        team = team_with(one.api, admin, "CS", owner, yara)
        play = create_play(
            one.api,
            admin,
            "CSM and kick-off",
            [
                {"update_value": {"role": "roles/success_manager", "user": "yara@example.com"}},
                {"create_task": {"title": "Kick-off", "holder_of_role": "roles/success_manager"}},
            ],
            owner=owner,
            team=team,
        )
        events = [account_event(f"acct-{i}") for i in range(60)]
        for start in range(0, 60, 10):  # events arrive at both replicas
            publish(replicas[start // 10 % 2].api, admin, *events[start : start + 10])
        wait_processed(two.api, admin, *(e.event_id for e in events), timeout=60)

        assert sorted(per_replica(replicas, "steward_worker_lease_held")) == [0, 1]
        finished = per_replica(replicas, "steward_rules_runs_finished")
        assert sum(finished) == 60 and min(finished) > 0, f"runs finished per replica: {finished}"
        # Each SetAssignment made one assignment.set event in the users stream: consumed once.
        eventually(lambda: sum(per_replica(replicas, "steward_rules_users_events_consumed")) >= 60, "consumed")
        time.sleep(0.5)  # a second consumer would have caught up by now
        consumed = per_replica(replicas, "steward_rules_users_events_consumed")
        assert sorted(consumed) == [0, 60], f"users events consumed per replica: {consumed}"

        # The holder dies without releasing: the other takes over once the lease expires.
        holder = replicas[per_replica(replicas, "steward_worker_lease_held").index(1)]
        survivor = two if holder is one else one
        holder.process.popen.kill()
        later = [account_event(f"acct-{i}") for i in range(60, 80)]
        publish(survivor.api, admin, *later)
        wait_processed(survivor.api, admin, *(e.event_id for e in later), timeout=60)
        # The runs of its own partitions never waited; the others once the dead one's expired.
        eventually(lambda: survivor.metric("steward_partition_owned") == 16, "the survivor holds every partition")
        eventually(lambda: survivor.metric("steward_worker_lease_held") == 1, "the survivor consumes")
        assert survivor.metric("steward_rules_runs_finished") == finished[replicas.index(survivor)] + 20

        runs = runs_of(survivor.api, admin, play=play.name)
        assert len(runs) == 80 and {r.outcome for r in runs} == {plays_pb2.RUN_OUTCOME_APPLIED}
        for event in [*events, *later]:
            account = event.account_id
            changes = users.assignments.ListAssignmentHistory(
                assignments_pb2.ListAssignmentHistoryRequest(account_id=account), metadata=admin
            ).changes
            tasks = users.tasks.ListTasks(work_pb2.ListTasksRequest(account_id=account), metadata=admin).tasks
            assert (len(changes), len(tasks)) == (1, 1), f"{account}: {len(changes)} changes, {len(tasks)} tasks"
    finally:
        for replica in replicas:
            replica.close()


def test_a_replica_that_lost_its_lease_records_nothing(databases):
    """The fence: a holder paused past its expiry wakes up, and its write is refused."""
    from services.rules.adapters.orm import WORKER_LEASES
    from services.rules.app import MIGRATIONS
    from services.runtime.db import Database
    from services.runtime.leases import LeaseLost

    url = databases.url("rules")
    MIGRATIONS.upgrade(url)
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    dbs = [Database(url), Database(url)]
    first, second = (
        WorkerLease(db, WORKER_LEASES, "rules.workers", ttl_seconds=10, holder=name, clock=lambda: now[0])
        for db, name in zip(dbs, ("first", "second"), strict=True)
    )
    try:
        assert first.try_hold() and not second.try_hold()
        with dbs[0].write_sessions() as session, session.begin():
            first.fence(session)  # held: renews until now + 10 s
        now[0] += dt.timedelta(seconds=9)
        assert not second.try_hold(), "the fence renewed the lease; it must not have expired"
        now[0] += dt.timedelta(seconds=11)  # the first holder stalls past its expiry
        assert second.try_hold() and second.current_holder() == "second"
        with pytest.raises(LeaseLost), dbs[0].write_sessions() as session, session.begin():
            first.fence(session)
        assert not first.held and second.held
        second.release()
        assert second.current_holder() is None and first.try_hold()
    finally:
        for db in dbs:
            db.dispose()


def test_of_many_replicas_taking_a_free_lease_at_once_one_wins(databases):
    from services.rules.adapters.orm import WORKER_LEASES
    from services.rules.app import MIGRATIONS
    from services.runtime.db import Database

    url = databases.url("rules")
    MIGRATIONS.upgrade(url)
    dbs = [Database(url) for _ in range(6)]
    leases = [WorkerLease(db, WORKER_LEASES, "rules.workers", holder=f"r{i}") for i, db in enumerate(dbs)]
    barrier = threading.Barrier(len(leases))
    results: dict[str, bool] = {}

    def contend(lease: WorkerLease) -> None:
        barrier.wait()
        results[lease.holder] = lease.try_hold()

    threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        winners = [holder for holder, won in results.items() if won]
        assert len(results) == 6 and len(winners) == 1, results
        assert leases[0].current_holder() == winners[0]
    finally:
        for db in dbs:
            db.dispose()


# --- users: the outbox stream from either replica ----------------------------------------


def _users_replica(serve, database_url: str) -> UsersApi:
    running = serve(users_spec(UsersConfig()), database_url=database_url)
    return UsersApi(
        running, users_pb2_grpc.UserServiceStub(running.channel), users_pb2_grpc.TeamServiceStub(running.channel)
    )


def _watch(api: UsersApi, admin, count: int) -> list[events_pb2.Event]:
    stream = api.events.WatchEvents(events_pb2.WatchEventsRequest(after_cursor=""), metadata=admin, timeout=60)
    seen: list[events_pb2.Event] = []
    for event in stream:
        seen.append(event)
        if len(seen) == count:
            stream.cancel()
            break
    return seen


def test_the_event_stream_is_the_same_gap_free_sequence_from_either_users_replica(databases, serve, admin):
    url = databases.url("users")
    replicas = [_users_replica(serve, url), _users_replica(serve, url)]
    writers = 4
    per_writer = 15

    def write(index: int) -> None:  # concurrent writers, half through each replica
        api = replicas[index % 2]
        for n in range(per_writer):
            role = assignments_pb2.Role(key=f"role_{index}_{n}", display_name=f"Role {index}-{n}")
            api.assignments.CreateRole(assignments_pb2.CreateRoleRequest(role=role), metadata=admin)

    baseline = len(_drain_now(replicas[0], admin))
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    expected = baseline + writers * per_writer
    streams = [_watch(api, admin, expected) for api in replicas]
    cursors = [[int(e.cursor) for e in stream] for stream in streams]
    assert cursors[0] == cursors[1], "the two replicas served different streams"
    assert cursors[0] == sorted(set(cursors[0])), "cursors repeat or go back"
    created = [e for e in streams[0] if e.type == "role.created"]
    assert len(created) == writers * per_writer


def _drain_now(api: UsersApi, admin) -> list[Any]:
    """Events already in the stream before the test writes (the bootstrap admin, say)."""
    stream = api.events.WatchEvents(events_pb2.WatchEventsRequest(after_cursor=""), metadata=admin, timeout=2)
    seen: list[Any] = []
    try:
        for event in stream:
            seen.append(event)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    return seen


# --- sync: the scheduler and the job run --------------------------------------------------


class _Replica:
    """A sync replica's scheduler and runner on its own engine, on a clock the test sets."""

    def __init__(self, api: SyncApi, db: Any, clock: Callable[[], dt.datetime]) -> None:
        self.users = SyncUsersClient(api.users.running.address, JWT_SECRET)
        retry = SyncConfig(salesforce_attempts=3, salesforce_max_backoff_seconds=0.05)
        self.runner = JobRunner(db, self.users, registry.standard(retry), clock=clock)
        self.scheduler = Scheduler(db, self.runner, clock=clock)

    def close(self) -> None:
        self.runner.wait(30)
        self.users.stop(1)


def _runs(api: SyncApi, md, job: jobs_pb2.Job) -> list[jobs_pb2.Run]:
    return list(api.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=job.name, page_size=100), metadata=md).runs)


def _settled(api: SyncApi, md, job: jobs_pb2.Job) -> list[jobs_pb2.Run]:
    eventually(lambda: all(r.state != jobs_pb2.RUN_STATE_RUNNING for r in _runs(api, md, job)), "runs finished")
    return _runs(api, md, job)


def test_each_scheduled_sync_run_happens_once_across_replicas(sync_api, serve, admin):  # noqa: F811
    api: SyncApi = sync_api
    second = serve(
        sync_spec(SyncConfig(users_address=api.users.running.address, scheduler_poll_seconds=3600)),
        database_url=api.sync.runtime.settings.database_url,
    )
    job = make_job(api, admin)
    job.state = jobs_pb2.JOB_STATE_ACTIVE
    job.run_interval.FromTimedelta(dt.timedelta(minutes=5))
    api.jobs.UpdateJob(
        jobs_pb2.UpdateJobRequest(job=job, update_mask={"paths": ["state", "run_interval"]}), metadata=admin
    )
    now = [dt.datetime.now(dt.UTC)]
    replicas = [_Replica(api, api.sync.runtime.db, lambda: now[0]), _Replica(api, second.runtime.db, lambda: now[0])]
    try:
        one, two = replicas
        stale = two.scheduler.due_now()  # replica two sees the job due...
        assert [j.id for j in stale] == [job.name.split("/")[-1]]
        assert len(one.scheduler.tick()) == 1  # ...replica one runs it, to the end
        [first] = _settled(api, admin, job)
        assert first.state == jobs_pb2.RUN_STATE_SUCCEEDED
        assert two.scheduler.start_due(stale) == [], "a finished slot was run again"
        assert len(_runs(api, admin, job)) == 1

        now[0] += dt.timedelta(minutes=6)  # the next slot: both replicas tick at the same moment
        barrier = threading.Barrier(2)
        started: list[list[str]] = [[], []]

        def tick(index: int) -> None:
            barrier.wait()
            started[index] = replicas[index].scheduler.tick()

        threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(len(s) for s in started) == [0, 1], started
        runs = _settled(api, admin, job)
        assert len(runs) == 2 and {r.state for r in runs} == {jobs_pb2.RUN_STATE_SUCCEEDED}
        assert one.scheduler.tick() == [] and two.scheduler.tick() == []  # not due again yet
    finally:
        for replica in replicas:
            replica.close()


def test_two_replicas_asked_to_run_a_job_at_once_start_one_run(sync_api, serve, admin):  # noqa: F811
    api: SyncApi = sync_api
    second = serve(
        sync_spec(SyncConfig(users_address=api.users.running.address, scheduler_poll_seconds=3600)),
        database_url=api.sync.runtime.settings.database_url,
    )
    job = make_job(api, admin)
    from steward.sync.v1 import jobs_pb2_grpc

    stubs = [api.jobs, jobs_pb2_grpc.JobServiceStub(second.channel)]
    api.salesforce.set_latency(0.3)  # keep the first run going while the second asks
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def start(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = list(stubs[index].RunJob(jobs_pb2.RunJobRequest(name=job.name), metadata=admin))[-1].run
        except grpc.RpcError as error:
            outcomes[index] = error.code()

    threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    refused = [o for o in outcomes if o == grpc.StatusCode.ABORTED]
    finished = [o for o in outcomes if isinstance(o, jobs_pb2.Run)]
    assert len(refused) == 1 and len(finished) == 1, outcomes
    assert [r.name for r in _settled(api, admin, job)] == [finished[0].name]


def test_a_scheduled_run_whose_replica_died_does_not_stop_the_schedule(sync_api, admin):  # noqa: F811
    """The slot's run id is taken by a run that died with its replica (still RUNNING, lease
    expired): the next look marks it INTERRUPTED and the one after starts the slot's next run."""
    import uuid

    from services.sync.domain.runs import Run, RunMode, RunState
    from services.sync.service_layer.runner import RUN_IDS
    from services.sync.unit_of_work import SyncUnitOfWork

    api: SyncApi = sync_api
    job = make_job(api, admin)
    job.state = jobs_pb2.JOB_STATE_ACTIVE
    job.run_interval.FromTimedelta(dt.timedelta(minutes=5))
    api.jobs.UpdateJob(
        jobs_pb2.UpdateJobRequest(job=job, update_mask={"paths": ["state", "run_interval"]}), metadata=admin
    )
    job_id = job.name.split("/")[-1]
    now = [dt.datetime.now(dt.UTC)]
    replica = _Replica(api, api.sync.runtime.db, lambda: now[0])
    try:
        # What a replica killed during the job's first scheduled run leaves behind.
        dead_id = str(uuid.uuid5(RUN_IDS, f"{job_id}/schedule/after/none"))
        with SyncUnitOfWork(api.sync.runtime.db) as uow:
            assert uow.jobs.take_lease(job_id, dead_id, now[0], now[0] + dt.timedelta(seconds=60)) == ""
            uow.runs.put(Run(dead_id, job_id, RunMode.FULL, RunState.RUNNING, now[0], "schedule"))
            uow.commit()
        assert replica.scheduler.tick() == [], "its lease is live: the run may still be going"
        now[0] += dt.timedelta(minutes=2)  # the lease has expired
        assert replica.scheduler.tick() == []  # finds the dead run in the slot and reaps it
        dead = api.jobs.GetRun(jobs_pb2.GetRunRequest(name=f"{job.name}/runs/{dead_id}"), metadata=admin)
        assert (dead.state, dead.error_code) == (jobs_pb2.RUN_STATE_FAILED, "INTERRUPTED")
        now[0] += dt.timedelta(minutes=5)
        [started] = replica.scheduler.tick()
        runs = {r.name: r for r in _settled(api, admin, job)}
        assert runs[started].state == jobs_pb2.RUN_STATE_SUCCEEDED and len(runs) == 2
    finally:
        replica.close()
