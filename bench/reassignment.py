"""Benchmark: reassigning a user who owns 100,000 assignments, 10,000 open tasks and 1,000
resources, through the running service: total time and the service's peak memory.

    make bench
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... make bench
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
import uuid
from pathlib import Path

import grpc
from sqlalchemy import insert

from bench.grpc_calls import seed_users
from bench.harness import SECRET, backend, scratch_databases, users_service
from services.runtime.auth import mint_token
from services.runtime.db import Database
from services.users.adapters.orm import AssignmentRecord, ResourceRecord, TaskRecord
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import users_pb2_grpc


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process has had since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def seed_holdings(db: Database, owner: str, assignments: int, tasks: int, resources: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.engine.begin() as conn:
        for start in range(0, assignments, 10_000):
            conn.execute(
                insert(AssignmentRecord),
                [
                    {
                        "account_id": f"001ACC{i:07d}",
                        "role_key": "success_manager",
                        "user_id": owner,
                        "source": "INTEGRATION",
                        "source_ref": "seed",
                        "update_time": now,
                    }
                    for i in range(start, min(start + 10_000, assignments))
                ],
            )
        conn.execute(
            insert(TaskRecord),
            [
                {
                    "id": str(uuid.uuid4()),
                    "account_id": f"001ACC{i:07d}",
                    "title": "Follow up",
                    "assignee_id": owner,
                    "status": "OPEN",
                    "created_by": "seed",
                    "create_time": now,
                }
                for i in range(tasks)
            ],
        )
        conn.execute(
            insert(ResourceRecord),
            [
                {
                    "kind": "SEGMENT",
                    "id": f"seg-{i}",
                    "display_name": f"Segment {i}",
                    "owner_id": owner,
                    "visibility": "SHARED" if i % 2 else "PRIVATE",
                    "senders": [],
                    "bcc": [],
                    "update_time": now,
                }
                for i in range(resources)
            ],
        )


def main() -> int:
    sizes = {
        "assignments": int(os.environ.get("BENCH_REASSIGN_ASSIGNMENTS", "100000")),
        "tasks": int(os.environ.get("BENCH_REASSIGN_TASKS", "10000")),
        "resources": int(os.environ.get("BENCH_REASSIGN_RESOURCES", "1000")),
    }
    with scratch_databases("reassign") as (url,), users_service(url) as (server, address):
        db = Database(url)
        leaver, heir = seed_users(db, 2)
        seed_holdings(db, leaver, sizes["assignments"], sizes["tasks"], sizes["resources"])
        db.dispose()
        rss_before = peak_rss_mib(server.popen.pid)
        token = mint_token(SECRET, "bench", roles=["admin"], ttl_seconds=3600)
        with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
            stub = users_pb2_grpc.UserServiceStub(channel)
            started = time.perf_counter()
            summary = stub.ReassignUserResources(
                pb.ReassignUserResourcesRequest(
                    name=f"users/{leaver}",
                    plan=pb.ReassignmentPlan(
                        accounts_and_tasks_to=f"users/{heir}",
                        shared_resources_to=f"users/{heir}",
                        private_resources_to=f"users/{heir}",
                    ),
                ),
                metadata=[("authorization", f"Bearer {token}")],
                timeout=600,
            )
            seconds = time.perf_counter() - started
        rss_after = peak_rss_mib(server.popen.pid)
        assert summary.assignments.count == sizes["assignments"], summary.assignments.count
        assert summary.open_tasks.count == sizes["tasks"]
        moved_resources = summary.shared_resources.count + summary.private_resources.count
        assert moved_resources == sizes["resources"]
    print(f"\n### reassignment, {backend()} — {dt.date.today().isoformat()}\n")
    print("| owned | total s | users service peak RSS before → after |")
    print("|---|---:|---:|")
    print(
        f"| {sizes['assignments']:,} assignments, {sizes['tasks']:,} open tasks, {sizes['resources']:,} resources "
        f"| {seconds:.2f} | {rss_before:.0f} MiB → {rss_after:.0f} MiB |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
