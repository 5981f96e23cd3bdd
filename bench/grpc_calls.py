"""Benchmark: users-service calls against a health-check baseline measured in the same run.

The server runs as its own process (as in production) on SQLite in a temporary folder, or on
PostgreSQL when STEWARD_BENCH_DATABASE_URL is set; the client calls it sequentially over
loopback. Prints a Markdown table for docs/benchmarks.md.

    make bench                      # defaults: 10,000 users, 2,000 calls per operation
    BENCH_USERS=1000 BENCH_CALLS=500 make bench
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import insert

from bench.harness import SECRET, backend, scratch_databases, users_service
from services.runtime.auth import mint_token
from services.runtime.db import Database
from services.users.adapters.orm import UserRecord
from steward.users.v1 import users_pb2, users_pb2_grpc


def pb_bulk(ids: list[str]) -> users_pb2.BulkUserActionRequest:
    return users_pb2.BulkUserActionRequest(action=users_pb2.BULK_ACTION_DISABLE, users=[f"users/{i}" for i in ids])


def seed_users(db: Database, count: int) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "email": f"user{i:06d}@example.com",
            "email_normalized": f"user{i:06d}@example.com",
            "first_name": "Bench",
            "last_name": f"User {i}",
            "status": "ACTIVE",
            "license": "PRACTITIONER",
            "global_admin": False,
            "alternative_emails": [],
            "custom_attributes": {"region": "emea"},
            "signature": "",
            "create_time": now,
            "update_time": now,
            "version": 1,
        }
        for i in range(count)
    ]
    with db.engine.begin() as conn:
        for start in range(0, count, 1000):
            conn.execute(insert(UserRecord), rows[start : start + 1000])
    return [str(r["id"]) for r in rows]


def measure(call: Callable[[int], object], calls: int, warmup: int = 50) -> list[float]:
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - started)
    return samples


def summarize(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return len(samples) / sum(samples), p50 * 1000, p99 * 1000


def main() -> int:
    user_count = int(os.environ.get("BENCH_USERS", "10000"))
    calls = int(os.environ.get("BENCH_CALLS", "2000"))
    with scratch_databases("users") as (url,), users_service(url) as (_server, address):
        db = Database(url)
        ids = seed_users(db, user_count)
        db.dispose()
        metadata = [("authorization", f"Bearer {mint_token(SECRET, 'bench', roles=['admin'], ttl_seconds=3600)}")]
        channel = grpc.insecure_channel(address)
        health = health_pb2_grpc.HealthStub(channel)
        users = users_pb2_grpc.UserServiceStub(channel)
        first_page = users.ListUsers(users_pb2.ListUsersRequest(page_size=100), metadata=metadata)
        results = {
            "Health.Check (baseline)": measure(lambda i: health.Check(health_pb2.HealthCheckRequest()), calls),
            "UserService.GetUser": measure(
                lambda i: users.GetUser(
                    users_pb2.GetUserRequest(name=f"users/{ids[(i * 7919) % len(ids)]}"), metadata=metadata
                ),
                calls,
            ),
            "UserService.ListUsers (page of 100, first page)": measure(
                lambda i: users.ListUsers(users_pb2.ListUsersRequest(page_size=100), metadata=metadata), calls
            ),
            "UserService.ListUsers (page of 100, second page)": measure(
                lambda i: users.ListUsers(
                    users_pb2.ListUsersRequest(page_size=100, page_token=first_page.next_page_token),
                    metadata=metadata,
                ),
                calls,
            ),
        }
        bulk_size = min(int(os.environ.get("BENCH_BULK", "5000")), len(ids))
        started = time.perf_counter()
        reply = users.BulkUserAction(pb_bulk(ids[:bulk_size]), metadata=metadata, timeout=600)
        bulk_seconds = time.perf_counter() - started
        assert reply.done_count == bulk_size, reply.skipped_count
        channel.close()
    _, base_p50, _ = summarize(results["Health.Check (baseline)"])
    print(f"\n### users service, {user_count:,} users, {backend()} — {dt.date.today().isoformat()}\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{calls:,} sequential calls per row over loopback after 50 warm-up calls.\n"
    )
    print("| operation | calls/s | p50 ms | p99 ms | p50 ÷ baseline p50 |")
    print("|---|---:|---:|---:|---:|")
    for name, samples in results.items():
        rate, p50, p99 = summarize(samples)
        print(f"| {name} | {rate:,.0f} | {p50:.2f} | {p99:.2f} | {p50 / base_p50:.1f}x |")
    print(
        f"\nBulkUserAction DISABLE of {bulk_size:,} users (one call, one transaction, one email queued per "
        f"user): {bulk_seconds:.2f} s total, {bulk_seconds / bulk_size * 1000:.3f} ms per user "
        f"= {bulk_seconds / bulk_size * 1000 / base_p50:.1f}x a health check."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
