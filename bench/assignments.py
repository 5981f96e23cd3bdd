"""Benchmark: BatchSetAssignments against a plain bulk insert of the same rows, and GetAccountTeam
against a health-check baseline, all measured in the same run on the same kind of database.

    make bench                                       # 100,000 rows
    BENCH_ROWS=20000 make bench
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... make bench
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import insert

from bench.grpc_calls import measure, seed_users, summarize
from bench.harness import SECRET, backend, scratch_databases, users_service
from services.runtime.auth import mint_token
from services.runtime.db import Database
from services.users.adapters.orm import AssignmentRecord
from services.users.app import MIGRATIONS
from steward.users.v1 import assignments_pb2 as pb
from steward.users.v1 import assignments_pb2_grpc

BATCH = 10_000


def plain_bulk_insert(url: str, rows: list[dict[str, object]]) -> float:
    """The floor: the same rows straight into an empty assignments table, no checks, no history."""
    MIGRATIONS.upgrade(url)
    db = Database(url)
    try:
        plain_users = seed_users(db, 1000)  # the same users, under this database's ids
        rows = [row | {"user_id": plain_users[i % 1000]} for i, row in enumerate(rows)]
        started = time.perf_counter()
        with db.engine.begin() as conn:
            for start in range(0, len(rows), BATCH):
                conn.execute(insert(AssignmentRecord), rows[start : start + BATCH])
        return time.perf_counter() - started
    finally:
        db.dispose()


def main() -> int:
    row_count = int(os.environ.get("BENCH_ROWS", "100000"))
    calls = int(os.environ.get("BENCH_CALLS", "2000"))
    with (
        scratch_databases("service", "plain") as (service_url, plain_url),
        users_service(service_url) as (
            _server,
            address,
        ),
    ):
        db = Database(service_url)
        user_ids = seed_users(db, 1000)
        db.dispose()
        now = dt.datetime.now(dt.UTC)
        plain_rows: list[dict[str, object]] = [
            {
                "account_id": f"001ACC{i:07d}",
                "role_key": "success_manager",
                "user_id": user_ids[i % 1000],
                "source": "INTEGRATION",
                "source_ref": "bench",
                "update_time": now,
            }
            for i in range(row_count)
        ]
        plain_seconds = plain_bulk_insert(plain_url, plain_rows)
        token = mint_token(SECRET, "bench", roles=["admin"], ttl_seconds=3600)
        metadata = [("authorization", f"Bearer {token}")]
        channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
        stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
        source = pb.WriteSource(source=pb.ASSIGNMENT_SOURCE_INTEGRATION, source_ref="bench")
        started = time.perf_counter()
        changed = 0
        for start in range(0, row_count, BATCH):
            rows = [
                pb.AssignmentRow(
                    account_id=str(r["account_id"]),
                    role="roles/success_manager",
                    user=pb.UserRef(email=f"user{i % 1000:06d}@example.com"),
                )
                for i, r in enumerate(plain_rows[start : start + BATCH], start=start)
            ]
            reply = stub.BatchSetAssignments(
                pb.BatchSetAssignmentsRequest(rows=rows, source=source), metadata=metadata, timeout=900
            )
            changed += reply.changed_count
        service_seconds = time.perf_counter() - started
        assert changed == row_count, changed
        health = health_pb2_grpc.HealthStub(channel)
        baseline = measure(lambda i: health.Check(health_pb2.HealthCheckRequest()), calls)
        teams = measure(
            lambda i: stub.GetAccountTeam(
                pb.GetAccountTeamRequest(account_id=f"001ACC{(i * 7919) % row_count:07d}"), metadata=metadata
            ),
            calls,
        )
        channel.close()
    base_rate, base_p50, base_p99 = summarize(baseline)
    rate, p50, p99 = summarize(teams)
    print(f"\n### account assignment, {row_count:,} rows, {backend()} — {dt.date.today().isoformat()}\n")
    print("| operation | rows/s | total s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| plain SQLAlchemy bulk insert (floor) | {row_count / plain_seconds:,.0f} | {plain_seconds:.2f} | 1.0x |")
    print(
        f"| BatchSetAssignments ({BATCH:,} rows a call, INTEGRATION, by email) | "
        f"{row_count / service_seconds:,.0f} | {service_seconds:.2f} | {service_seconds / plain_seconds:.1f}x |"
    )
    print(f"\n{calls:,} sequential calls each:\n")
    print("| operation | calls/s | p50 ms | p99 ms | p50 ÷ baseline p50 |")
    print("|---|---:|---:|---:|---:|")
    print(f"| Health.Check (baseline) | {base_rate:,.0f} | {base_p50:.2f} | {base_p99:.2f} | 1.0x |")
    print(f"| AssignmentService.GetAccountTeam | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {p50 / base_p50:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
