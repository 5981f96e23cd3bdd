"""The sync service killed in the middle of a run: after a restart the next run completes, and
the account teams end exactly as after one uninterrupted run."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from services.sync.app import build_spec
from services.sync.config import SyncConfig
from steward.sync.v1 import jobs_pb2, jobs_pb2_grpc
from steward.users.v1 import assignments_pb2
from tests.conftest import JWT_SECRET
from tests.processes import free_port, is_serving, python_module
from tests.seed import add_user
from tests.test_sync_etm import SyncApi, make_job
from tools.salesforce_standin import Emulator, Org, generate_rows


def _sync_process(database_url: str, users_address: str):
    port = free_port()
    process = python_module(
        "services.sync",
        "serve",
        env={
            "STEWARD_JWT_SECRET": JWT_SECRET,
            "STEWARD_SYNC_DATABASE_URL": database_url,
            "STEWARD_SYNC_PORT": str(port),
            "STEWARD_SYNC_METRICS_PORT": "-1",
            "STEWARD_USERS_ADDRESS": users_address,
            "STEWARD_MIGRATE_ON_START": "true",
            "STEWARD_SYNC_RUN_LEASE_SECONDS": "2",
            "STEWARD_LOG_LEVEL": "warning",
        },
    )
    address = f"127.0.0.1:{port}"
    process.wait_for(lambda: is_serving(address), what="SERVING")
    return process, address


def _teams(users, md, accounts: list[str], email_of: dict[str, str]) -> dict[str, dict[str, str]]:
    """Account -> role -> holder's email (ids differ between two directories), read a page of
    1,000 assignments at a time rather than an account at a time."""
    teams: dict[str, dict[str, str]] = {account: {} for account in accounts}
    token = ""
    while True:
        reply = users.assignments.ListAssignments(
            assignments_pb2.ListAssignmentsRequest(page_size=1000, page_token=token), metadata=md
        )
        for assignment in reply.assignments:
            teams.setdefault(assignment.account_id, {})[assignment.role] = email_of[assignment.user]
        token = reply.next_page_token
        if not token:
            return teams


# A run writes one row per account and role (10,000 per batch): ~100,000 view rows give ~27,600
# of them here, so three write batches; the first is written while the run still reads, and the
# kill falls after it. Two full syncs take under a minute alone; a busy machine (CI, PostgreSQL)
# needs more than the default 120 s.
@pytest.mark.timeout(360)
def test_a_run_killed_midway_is_taken_over_and_ends_like_an_uninterrupted_one(databases, serve, users_api, admin):
    org = Org()
    generate_rows(org, 100_000, seed=11)  # ~27,600 account-role pairs: three batches
    emails = sorted({row["email"].lower() for row in org.rows('SELECT "Email" AS email FROM "User"')})
    accounts = org.account_ids()
    with Emulator(org) as salesforce:
        salesforce.set_latency(0.02)
        reference_users = users_api()
        crashed_users = users_api(database_url=databases.url("users_crashed"))  # a second, empty directory
        email_of: dict[str, str] = {}  # "users/{uid}" -> email, over both directories
        for users in (reference_users, crashed_users):
            for email in emails:
                email_of[f"users/{add_user(users.db, email).id}"] = email
        reference = SyncApi(
            serve(build_spec(SyncConfig(users_address=reference_users.running.address, scheduler_poll_seconds=3600))),
            reference_users,
            salesforce,
            None,  # type: ignore[arg-type]
        )
        expected_run = list(
            reference.jobs.RunJob(jobs_pb2.RunJobRequest(name=make_job(reference, admin).name), metadata=admin)
        )[-1].run
        assert expected_run.state == jobs_pb2.RUN_STATE_SUCCEEDED, expected_run.error_message
        expected = _teams(reference_users, admin, accounts, email_of)

        url = databases.url("sync_restart")
        process, address = _sync_process(url, crashed_users.running.address)
        channel = grpc.insecure_channel(address)
        try:
            crashed = SyncApi(type("Running", (), {"channel": channel})(), crashed_users, salesforce, None)  # type: ignore[arg-type]
            job = make_job(crashed, admin)
            stream = crashed.jobs.RunJob(jobs_pb2.RunJobRequest(name=job.name), metadata=admin)
            for progress in stream:
                if progress.run.counts.assigned > 0:  # at least one batch written
                    process.popen.send_signal(signal.SIGKILL)
                    break
            # The batch was written while the run was still reading (a full read streams).
            assert 0 < progress.run.counts.rows_read < expected_run.counts.rows_read
            interrupted = progress.run.name
            process.finish(timeout=30)
            process.close()
            channel.close()

            process, address = _sync_process(url, crashed_users.running.address)
            channel = grpc.insecure_channel(address)
            jobs = jobs_pb2_grpc.JobServiceStub(channel)
            deadline = time.monotonic() + 30
            while True:  # the dead run's lease (2 s here) must expire before the job runs again
                try:
                    final = list(jobs.RunJob(jobs_pb2.RunJobRequest(name=job.name), metadata=admin))[-1].run
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.ABORTED and time.monotonic() < deadline, error
                    time.sleep(0.5)
            assert final.state == jobs_pb2.RUN_STATE_SUCCEEDED, final.error_message
            dead = jobs.GetRun(jobs_pb2.GetRunRequest(name=interrupted), metadata=admin)
            assert (dead.state, dead.error_code) == (jobs_pb2.RUN_STATE_FAILED, "INTERRUPTED")
            assert final.counts.rows_read == expected_run.counts.rows_read
            # What the killed run wrote was not sent again: those rows name their holder already.
            assert final.counts.assigned < expected_run.counts.assigned
            assert final.counts.assigned + final.counts.unchanged == (
                expected_run.counts.assigned + expected_run.counts.unchanged
            )
            assert _teams(crashed_users, admin, accounts, email_of) == expected
        finally:
            channel.close()
            process.popen.terminate()
            process.finish(timeout=30)
            process.close()
