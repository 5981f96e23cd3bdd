"""Benchmark: an identity provider's initial SCIM push of BENCH_SCIM_USERS users, beside
UpsertUsers of the same users, measured in the same run, each on a fresh database (issue 18).

A users service runs as its own process with SCIM on (users created ACTIVE, as with SSO), on a
scratch database of its own for every measurement:

- SCIM, as Okta and Entra ID push: for each user a lookup `GET /Users?filter=userName eq "..."`
  (none is found) then `POST /Users` with an Okta-shaped body; from BENCH_SCIM_CLIENTS threads
  (default 4) and from 1, each thread on its own keep-alive HTTP/1.1 connection;
- UpsertUsers: the same users (VIEWER, as SCIM creates them) in calls of 1,000 rows, one client.

Users/s are medians of BENCH_SCIM_REPEATS (2) runs, the three kinds interleaved; POST latencies
are over every POST of every run. The bench fails unless every lookup found nothing, every POST
answered 201, every row was CREATED and the database holds the users afterwards.

    make bench
    BENCH_SCIM_USERS=1000 BENCH_SCIM_REPEATS=1 .venv/bin/python -m bench.scim
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m bench.scim
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import grpc
from sqlalchemy import func, select

from bench.harness import SECRET, backend, scratch_databases
from bench.rules import percentile
from services.runtime.auth import mint_token
from services.runtime.db import Database
from services.users.adapters.orm import UserRecord
from steward.users.v1 import users_pb2 as pb
from steward.users.v1 import users_pb2_grpc
from tests.processes import Process, free_port, users_process

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE_PATH = "/scim/v2"
UPSERT_BATCH = 1000  # the most rows UpsertUsers takes in a call
FIRST = ("Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken", "Radia")
LAST = ("Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton", "Thompson", "Perlman")


@dataclass(frozen=True)
class Person:
    email: str
    first_name: str
    last_name: str
    external_id: str


def people(count: int) -> list[Person]:
    return [
        Person(f"scim.user{i:06d}@example.com", FIRST[i % 10], f"{LAST[(i // 10) % 10]} {i}", f"00u{i:017d}")
        for i in range(count)
    ]


def scim_body(person: Person) -> bytes:
    """What Okta sends: userName and the primary work email are the same address."""
    return json.dumps(
        {
            "schemas": [CORE_USER],
            "userName": person.email,
            "name": {"givenName": person.first_name, "familyName": person.last_name},
            "emails": [{"value": person.email, "type": "work", "primary": True}],
            "active": True,
            "externalId": person.external_id,
        }
    ).encode()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextmanager
def scim_users_service(url: str) -> Iterator[tuple[Process, str, int]]:
    """bench.harness.users_service with SCIM on a port of its own, creating users ACTIVE."""
    grpc_port = free_port()
    scim_port = free_port()
    while scim_port == grpc_port:
        scim_port = free_port()
    server, address = users_process(
        url,
        SECRET,
        grpc_port,
        STEWARD_LOG_LEVEL="warning",
        STEWARD_USERS_SCIM_PORT=str(scim_port),
        STEWARD_SCIM_CREATE_STATUS="active",
    )
    try:
        # SERVING is the gRPC port's; the SCIM port may open a moment later.
        server.wait_for(lambda: listening(scim_port), what=f"SCIM on port {scim_port}")
        yield server, address, scim_port
    finally:
        server.popen.terminate()
        server.finish(timeout=60)
        server.close()


@dataclass
class Run:
    seconds: float
    posts: list[float] = field(default_factory=list)
    lookups: list[float] = field(default_factory=list)


class Client:
    """One identity-provider connection: keep-alive HTTP/1.1, one request at a time."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/scim+json",
            "Accept": "application/scim+json",
        }

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        self.connection.request(method, BASE_PATH + path, body=body, headers=self.headers)
        response = self.connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None

    def lookup(self, email: str) -> tuple[int, Any]:
        expression = 'userName eq "' + email + '"'
        return self.request("GET", f"/Users?filter={quote(expression)}")

    def close(self) -> None:
        self.connection.close()


def scim_push(port: int, token: str, users: list[Person], clients: int) -> Run:
    """Each thread pushes every `clients`-th user: look up, then create."""
    connections = [Client(port, token) for _ in range(clients)]
    for client in connections:  # open the connection and warm the path up (finds nobody: writes nothing)
        status, body = client.lookup("nobody@example.com")
        assert status == 200 and body["totalResults"] == 0, (status, body)
    posts: list[list[float]] = [[] for _ in range(clients)]
    lookups: list[list[float]] = [[] for _ in range(clients)]
    failures: list[str] = []

    def push(k: int) -> None:
        client = connections[k]
        try:
            for person in users[k::clients]:
                started = time.perf_counter()
                status, body = client.lookup(person.email)
                looked = time.perf_counter()
                if status != 200 or body["totalResults"] != 0:
                    failures.append(f"lookup {person.email}: {status} {body}")
                    return
                status, body = client.request("POST", "/Users", scim_body(person))
                lookups[k].append(looked - started)
                posts[k].append(time.perf_counter() - looked)
                if status != 201:
                    failures.append(f"POST {person.email}: {status} {body}")
                    return
        except Exception as error:  # reported below, on the main thread
            failures.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=push, args=(k,), name=f"idp-{k}") for k in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    for client in connections:
        client.close()
    assert not failures, failures[:5]
    return Run(seconds, [s for p in posts for s in p], [s for p in lookups for s in p])


def upsert(address: str, users: list[Person]) -> Run:
    metadata = [("authorization", f"Bearer {mint_token(SECRET, 'bench', roles=['admin'], ttl_seconds=3600)}")]
    with grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = users_pb2_grpc.UserServiceStub(channel)
        stub.GetLicenseUsage(pb.GetLicenseUsageRequest(), metadata=metadata)  # connect and warm up, as SCIM does
        created = 0
        started = time.perf_counter()
        for start in range(0, len(users), UPSERT_BATCH):
            rows = [
                pb.UpsertUserRow(
                    email=p.email, first_name=p.first_name, last_name=p.last_name, license=pb.LICENSE_VIEWER
                )
                for p in users[start : start + UPSERT_BATCH]
            ]
            reply = stub.UpsertUsers(pb.UpsertUsersRequest(rows=rows), metadata=metadata, timeout=600)
            created += sum(o.result == pb.UpsertUserOutcome.RESULT_CREATED for o in reply.outcomes)
        seconds = time.perf_counter() - started
    assert created == len(users), [o for o in reply.outcomes if o.result != pb.UpsertUserOutcome.RESULT_CREATED][:5]
    return Run(seconds)


def measure(kind: str, users: list[Person], label: str) -> Run:
    """One run of `kind` ("upsert" or a number of SCIM clients) on a fresh database and service."""
    with scratch_databases(label) as (url,), scim_users_service(url) as (_server, address, scim_port):
        if kind == "upsert":
            run = upsert(address, users)
        else:
            run = scim_push(scim_port, mint_token(SECRET, "service:okta", scopes=["users.scim"]), users, int(kind))
        db = Database(url)
        try:
            with db.engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(UserRecord)).scalar_one()
        finally:
            db.dispose()
    assert stored == len(users), (kind, stored)
    return run


def main() -> int:
    count = int(os.environ.get("BENCH_SCIM_USERS", "5000"))
    clients = int(os.environ.get("BENCH_SCIM_CLIENTS", "4"))
    repeats = int(os.environ.get("BENCH_SCIM_REPEATS", "2"))
    users = people(count)
    kinds = ["upsert", str(clients), "1"] if clients != 1 else ["upsert", "1"]
    runs: dict[str, list[Run]] = {kind: [] for kind in kinds}
    for repeat in range(repeats):
        for kind in kinds:
            runs[kind].append(measure(kind, users, f"scim_{kind}_{repeat}"))
    rate = {kind: statistics.median(count / r.seconds for r in rs) for kind, rs in runs.items()}
    print(f"\n### SCIM provisioning, {count:,} users, {backend()} — {dt.date.today().isoformat()}\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Each run on a "
        f"fresh database and users service; users/s: median of {repeats}; latencies: every request of every run.\n"
    )
    print("| path | users/s | runs, s | ÷ UpsertUsers | lookup GET p50 ms | POST p50 ms | POST p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    seconds = ", ".join(f"{r.seconds:.2f}" for r in runs["upsert"])
    print(f"| UpsertUsers, calls of {UPSERT_BATCH:,} rows, 1 client | {rate['upsert']:,.0f} | {seconds} | 1.00 | | | |")
    for kind in kinds[1:]:
        posts = [s for r in runs[kind] for s in r.posts]
        lookups = [s for r in runs[kind] for s in r.lookups]
        seconds = ", ".join(f"{r.seconds:.2f}" for r in runs[kind])
        print(
            f"| SCIM GET filter + POST per user, {kind} client{'s' if kind != '1' else ''} | {rate[kind]:,.0f} "
            f"| {seconds} | {rate[kind] / rate['upsert']:.3f} | {statistics.median(lookups) * 1000:.2f} "
            f"| {statistics.median(posts) * 1000:.2f} | {percentile(posts, 0.95) * 1000:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
