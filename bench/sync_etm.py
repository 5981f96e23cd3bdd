"""Benchmark: a full Salesforce ETM sync of BENCH_SYNC_ROWS view rows (default 1,000,000) from the
emulator, end to end, beside a floor measured in the same run; then an incremental run after
BENCH_SYNC_CHANGED rows (default 10,000) changed in the org.

Processes: the Salesforce emulator (its own process by default, see EMULATOR below), a users
service and a sync service, each on its own scratch database (SQLite files, or PostgreSQL schemas
with STEWARD_BENCH_DATABASE_URL). Every user the org names is seeded straight into the users
database; the job maps CSM -> roles/success_manager, Account Executive -> roles/sales_manager and
Sales Manager -> roles/regional_sales_manager (created through CreateRole). The generated org
leaves a quarter of its territory members without a role; they are given one (round robin, through
the emulator's admin endpoint) before the run, so every row read maps and is written: with rows
skipped at mapping, the runner's per-batch request ids can collide (USERS_REQUEST_ID_REUSED, see
docs/benchmarks.md).

- end to end: RunJob FULL, from the call until the final RunProgress (rows read / seconds);
- floor: the same queries the run sent (Run.queries), fetched page by page with plain urllib and
  json.loads, plus a plain SQLAlchemy bulk insert of as many rows as the run wrote into an empty
  assignments table (bench.assignments.plain_bulk_insert);
- incremental: RoleInTerritory2 swapped (CSM <-> Account Executive) on enough user associations
  that about BENCH_SYNC_CHANGED view rows change (each one changes a view row per account of its
  territory: counted with COUNT() queries), then RunJob INCREMENTAL: total time and rows read.

    .venv/bin/python -m bench.sync_etm
    BENCH_SYNC_ROWS=200000 .venv/bin/python -m bench.sync_etm
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m bench.sync_etm
    BENCH_SYNC_EMULATOR=thread ...       # the emulator inside this process instead

EMULATOR: with the emulator in this process, the floor's urllib client and the emulator's
handler threads share one GIL, so fetching and serving cannot overlap; in its own process they
do, as the sync service and the emulator do. The figures in docs/benchmarks.md compare both.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import func, insert, select

from bench.assignments import plain_bulk_insert
from bench.harness import SECRET, backend, scratch_databases, users_service
from services.cli.health_probe import is_serving
from services.runtime.auth import mint_token
from services.runtime.db import Database
from services.users.adapters.orm import AssignmentRecord, UserRecord
from services.users.domain.model import normalize_email
from steward.sync.v1 import connections_pb2, connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from steward.users.v1 import assignments_pb2, assignments_pb2_grpc
from tests.processes import Process, free_port, python_module
from tools.salesforce_standin import Emulator, Org, generate_rows

API_VERSION = "62.0"
PAGE_SIZE = 2000  # what the sync service asks for (Sforce-Query-Options: batchSize=2000)
ROLE_VALUES = {
    "CSM": "roles/success_manager",
    "Account Executive": "roles/sales_manager",
    "Sales Manager": "roles/regional_sales_manager",
}
SWAP = {"CSM": "Account Executive", "Account Executive": "CSM"}
ACTIVE = "Territory2.Territory2Model.State = 'Active'"


# --- processes ---


@contextmanager
def sync_service(url: str, users_address: str) -> Iterator[tuple[Process, str]]:
    """A sync service process on its own port and database, talking to the users service."""
    port = free_port()
    process = python_module(
        "services.sync",
        "serve",
        env={
            "STEWARD_JWT_SECRET": SECRET,
            "STEWARD_SYNC_DATABASE_URL": url,
            "STEWARD_SYNC_PORT": str(port),
            "STEWARD_SYNC_METRICS_PORT": "-1",
            "STEWARD_USERS_ADDRESS": users_address,
            "STEWARD_MIGRATE_ON_START": "true",
            "STEWARD_SYNC_SCHEDULER_POLL_SECONDS": "3600",
            "STEWARD_LOG_LEVEL": "warning",
        },
    )
    address = f"127.0.0.1:{port}"
    try:
        process.wait_for(lambda: is_serving(address), what="SERVING")
        yield process, address
    finally:
        process.popen.terminate()
        process.finish(timeout=60)
        process.close()


@dataclass
class Salesforce:
    """The emulator as this benchmark uses it: over HTTP only, wherever it runs."""

    url: str
    client_id: str
    client_secret: str
    pid: int
    view_rows: int
    generated_seconds: float
    _token: str = field(default="", repr=False)

    def token(self) -> str:
        if not self._token:
            form = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
            request = urllib.request.Request(
                f"{self.url}/services/oauth2/token", data=urllib.parse.urlencode(form).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                self._token = str(json.loads(response.read())["access_token"])
        return self._token

    def pages(self, soql: str) -> Iterator[bytes]:
        """Raw JSON bodies of a query, following nextRecordsUrl, as the sync service reads them."""
        path = f"/services/data/v{API_VERSION}/query?{urllib.parse.urlencode({'q': soql})}"
        headers = {
            "Authorization": f"Bearer {self.token()}",
            "Accept": "application/json",
            "Sforce-Query-Options": f"batchSize={PAGE_SIZE}",
        }
        while path:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers), timeout=60) as reply:
                body = reply.read()
            yield body
            more = json.loads(body)
            path = "" if more.get("done", True) else str(more["nextRecordsUrl"])

    def records(self, soql: str) -> list[dict[str, Any]]:
        return [record for body in self.pages(soql) for record in json.loads(body)["records"]]

    def count(self, soql: str) -> int:
        return int(json.loads(next(self.pages(soql)))["totalSize"])

    def org(self, method: str, **arguments: Any) -> Any:
        """An Org method through the emulator's admin endpoint (works in or out of this process)."""
        request = urllib.request.Request(
            f"{self.url}/__emulator/org/{method}",
            data=json.dumps(arguments).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["result"]


@contextmanager
def salesforce(rows: int, seed: int, mode: str, org_args: tuple[str, ...] = ()) -> Iterator[Salesforce]:
    """The stand-in with an org of about `rows` view rows, or as `org_args` (its command line's
    --accounts, --team-members ...) say; in its own process unless mode is "thread"."""
    if mode == "thread":
        started = time.monotonic()
        org = Org()
        summary = generate_rows(org, rows, seed=seed)
        generated = time.monotonic() - started
        with Emulator(org) as emulator:
            yield Salesforce(
                emulator.url, emulator.client_id, emulator.client_secret, os.getpid(), summary.view_rows, generated
            )
        return
    # No account teams unless asked: the ETM org stays what it was before the stand-in had them.
    args = ["--port", "0", "--seed", str(seed), "--json", *(org_args or ("--rows", str(rows), "--team-members", "0"))]
    process = python_module("tools.salesforce_standin", *args, env={})
    try:
        process.wait_for(lambda: bool(process.stdout), seconds=600, what="the emulator's JSON line")
        info = json.loads(process.stdout[0])
        yield Salesforce(
            info["url"],
            info["client_id"],
            info["client_secret"],
            process.popen.pid,
            int(info["view_rows"]),
            float(info["generated_seconds"]),
        )
    finally:
        process.popen.terminate()
        process.finish(timeout=60)
        process.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- set-up ---


def seed_org_users(db: Database, emails: list[str]) -> int:
    """Every address the org uses, as an ACTIVE practitioner, once per address whatever its case."""
    now = dt.datetime.now(dt.UTC)
    unique = {normalize_email(e): e.strip() for e in emails if e and e.strip()}
    rows = [
        {
            "id": str(uuid.uuid4()),
            "email": email,
            "email_normalized": normalized,
            "first_name": "Etm",
            "last_name": f"User {i}",
            "status": "ACTIVE",
            "license": "PRACTITIONER",
            "global_admin": False,
            "alternative_emails": [],
            "custom_attributes": {},
            "signature": "",
            "create_time": now,
            "update_time": now,
            "version": 1,
        }
        for i, (normalized, email) in enumerate(sorted(unique.items()))
    ]
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(insert(UserRecord), rows[start : start + 1000])
    return len(rows)


def ensure_roles(
    channel: grpc.Channel, metadata: list[tuple[str, str]], role_values: dict[str, str] = ROLE_VALUES
) -> None:
    stub = assignments_pb2_grpc.AssignmentServiceStub(channel)
    existing = {
        role.name for role in stub.ListRoles(assignments_pb2.ListRolesRequest(page_size=100), metadata=metadata).roles
    }
    for name in sorted(set(role_values.values()) - existing):
        key = name.removeprefix("roles/")
        stub.CreateRole(
            assignments_pb2.CreateRoleRequest(
                role=assignments_pb2.Role(
                    key=key,
                    display_name=key.replace("_", " ").title(),
                    source=assignments_pb2.ROLE_SOURCE_EDITABLE,
                    empty_value=assignments_pb2.EMPTY_VALUE_KEEP_EXISTING,
                )
            ),
            metadata=metadata,
        )


def create_connection(
    channel: grpc.Channel, metadata: list[tuple[str, str]], sf: Salesforce
) -> connections_pb2.Connection:
    return connections_pb2_grpc.ConnectionServiceStub(channel).CreateConnection(
        connections_pb2.CreateConnectionRequest(
            connection=connections_pb2.Connection(
                display_name="Emulated org",
                instance_url=sf.url,
                api_version=API_VERSION,
                oauth=connections_pb2.OAuthSettings(
                    grant=connections_pb2.O_AUTH_GRANT_CLIENT_CREDENTIALS,
                    client_id=sf.client_id,
                    client_secret=sf.client_secret,
                ),
            )
        ),
        metadata=metadata,
    )


def create_job(channel: grpc.Channel, metadata: list[tuple[str, str]], sf: Salesforce) -> jobs_pb2.Job:
    connection = create_connection(channel, metadata, sf)
    return jobs_pb2_grpc.JobServiceStub(channel).CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(
                display_name="ETM benchmark",
                type=jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT,
                connection=connection.name,
                etm=jobs_pb2.EtmSettings(role_values=ROLE_VALUES, removals=jobs_pb2.REMOVALS_REPORT),
            )
        ),
        metadata=metadata,
    )


# --- measurements ---


@dataclass
class Timed:
    run: jobs_pb2.Run
    seconds: float
    cpu: dict[str, float]
    # (seconds since the call, the run as streamed): RunJob sends a message whenever the run changes.
    progress: list[tuple[float, jobs_pb2.Run]]

    def first_seen(self, reached: Any) -> float:
        """Seconds until the first message for which `reached(run)` holds."""
        return next((at for at, run in self.progress if reached(run)), self.seconds)


def run_job(
    channel: grpc.Channel, metadata: list[tuple[str, str]], job: str, mode: jobs_pb2.RunMode, pids: dict[str, int]
) -> Timed:
    stub = jobs_pb2_grpc.JobServiceStub(channel)
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    progress = [
        (time.perf_counter() - started, message.run)
        for message in stub.RunJob(jobs_pb2.RunJobRequest(name=job, mode=mode), metadata=metadata, timeout=7200)
    ]
    seconds = time.perf_counter() - started
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    assert progress, "RunJob streamed nothing"
    last = progress[-1][1]
    if last.state != jobs_pb2.RUN_STATE_SUCCEEDED:
        state = jobs_pb2.RunState.Name(last.state)
        raise SystemExit(f"run {last.name} ended {state}: {last.error_code} {last.error_message}")
    return Timed(last, seconds, cpu, progress)


def fetch_and_parse(sf: Salesforce, queries: list[str]) -> tuple[float, int, int]:
    """The floor's reading half: the same pages, plain urllib + json.loads. (seconds, pages, records)."""
    sf.token()
    started = time.perf_counter()
    pages = records = 0
    for soql in queries:
        for body in sf.pages(soql):
            records += len(json.loads(body)["records"])
            pages += 1
    return time.perf_counter() - started, pages, records


def bulk_insert_floor(url: str, count: int) -> float:
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, object]] = [
        {
            "account_id": f"001ACC{i:09d}",
            "role_key": "success_manager",
            "user_id": "",  # plain_bulk_insert puts its own seeded users here
            "source": "INTEGRATION",
            "source_ref": "bench",
            "update_time": now,
        }
        for i in range(count)
    ]
    return plain_bulk_insert(url, rows)


def fill_roles(sf: Salesforce) -> int:
    """Gives every role-less member of an Active territory a role (round robin); returns how many."""
    members = sf.records(
        f"SELECT UserId, Territory2Id FROM UserTerritory2Association WHERE IsActive = true AND {ACTIVE}"
        " AND RoleInTerritory2 = null"
    )
    values = sorted(ROLE_VALUES)
    for i, member in enumerate(members):
        sf.org("set_role", user_id=member["UserId"], territory_id=member["Territory2Id"], role=values[i % len(values)])
    return len(members)


def touch_one(sf: Salesforce) -> None:
    [member] = sf.records(
        f"SELECT UserId, Territory2Id FROM UserTerritory2Association WHERE IsActive = true AND {ACTIVE} LIMIT 1"
    )
    sf.org("touch_user_association", user_id=member["UserId"], territory_id=member["Territory2Id"])


def slots(url: str) -> int:
    """Assignments held: distinct (account, role) pairs."""
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(AssignmentRecord)).scalar_one())
    finally:
        db.dispose()


def change_rows(sf: Salesforce, wanted: int, seed: int) -> tuple[int, int]:
    """Swaps CSM <-> Account Executive on user associations, in a seeded random order, until about
    `wanted` view rows changed. Each active user association of the Active model has one view row
    per account associated with its territory, so the changed rows are the sum of those counts.
    Returns (view rows changed, user associations changed)."""
    associations = sf.records(
        "SELECT Id, UserId, Territory2Id, RoleInTerritory2 FROM UserTerritory2Association "
        f"WHERE IsActive = true AND {ACTIVE} AND RoleInTerritory2 IN ('CSM', 'Account Executive')"
    )
    random.Random(seed).shuffle(associations)
    accounts_in: dict[str, int] = {}
    changed = touched = 0
    for association in associations:
        if changed >= wanted:
            break
        territory = association["Territory2Id"]
        if territory not in accounts_in:
            accounts_in[territory] = sf.count(
                f"SELECT COUNT() FROM ObjectTerritory2Association WHERE Territory2Id = '{territory}' AND {ACTIVE}"
            )
        if not accounts_in[territory] or changed + accounts_in[territory] > wanted * 1.1:
            continue  # keep close to `wanted`: a territory that would overshoot by more than 10% is left alone
        sf.org(
            "set_role",
            user_id=association["UserId"],
            territory_id=territory,
            role=SWAP[association["RoleInTerritory2"]],
        )
        changed += accounts_in[territory]
        touched += 1
    return changed, touched


@dataclass(frozen=True)
class FirstFullRun:
    """A job's first full run, and the floor of the same work measured right after it."""

    job: jobs_pb2.Job
    timed: Timed
    written: int
    fetch_seconds: float
    pages: int
    records: int
    insert: float  # seconds of the plain bulk insert of `written` rows


def first_full_run(
    channel: grpc.Channel,
    metadata: list[tuple[str, str]],
    users_address: str,
    sf: Salesforce,
    make_job: Callable[[grpc.Channel, list[tuple[str, str]], Salesforce], jobs_pb2.Job],
    role_values: dict[str, str],
    pids: dict[str, int],
    plain_url: str,
) -> FirstFullRun:
    """The roles the job maps, the job, its first RunJob FULL; then the floor: the run's pages
    fetched and parsed again, and a plain bulk insert of as many rows as it wrote."""
    users_channel = grpc.insecure_channel(users_address)
    ensure_roles(users_channel, metadata, role_values)
    users_channel.close()
    job = make_job(channel, metadata, sf)
    full = run_job(channel, metadata, job.name, jobs_pb2.RUN_MODE_FULL, pids)
    written = full.run.counts.rows_read - full.run.counts.skipped
    fetch_seconds, pages, records = fetch_and_parse(sf, list(full.run.queries))
    return FirstFullRun(job, full, written, fetch_seconds, pages, records, bulk_insert_floor(plain_url, written))


def print_resources(runs: dict[str, Timed], rss: dict[str, float]) -> None:
    for label, timed in runs.items():
        print(
            f"CPU seconds during the {label} run: "
            + ", ".join(f"{name} {seconds:.1f}" for name, seconds in timed.cpu.items())
            + f" (wall {timed.seconds:.1f})."
        )
    print(f"Peak RSS: sync {rss['sync']:.0f} MiB, users {rss['users']:.0f} MiB.")


def counts_text(counts: jobs_pb2.RunCounts) -> str:
    skipped = ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.skipped_by_reason.items()))
    return (
        f"read {counts.rows_read:,}; assigned {counts.assigned:,}, updated {counts.updated:,}, "
        f"unchanged {counts.unchanged:,}, skipped {counts.skipped:,} ({skipped or 'none'}), stale {counts.stale:,}"
    )


def main() -> int:
    rows = int(os.environ.get("BENCH_SYNC_ROWS", "1000000"))
    wanted = int(os.environ.get("BENCH_SYNC_CHANGED", "10000"))
    seed = int(os.environ.get("BENCH_SYNC_SEED", "1"))
    mode = os.environ.get("BENCH_SYNC_EMULATOR", "process")
    if mode not in ("process", "thread"):
        raise SystemExit("BENCH_SYNC_EMULATOR must be process or thread")
    token = mint_token(SECRET, "bench", roles=["admin"], ttl_seconds=4 * 3600)
    metadata = [("authorization", f"Bearer {token}")]
    with (
        scratch_databases("users", "sync", "plain") as (users_url, sync_url, plain_url),
        salesforce(rows, seed, mode) as sf,
        users_service(users_url) as (users, users_address),
        sync_service(sync_url, users_address) as (sync, sync_address),
    ):
        db = Database(users_url)
        people = seed_org_users(db, [u["Email"] for u in sf.records("SELECT Email FROM User")])
        db.dispose()
        filled = fill_roles(sf)
        # An org keeps changing: a second after the role fill (547 associations stamped in one
        # second), one more association is touched, so the full run's watermark is that later
        # second. Otherwise the incremental run, which re-reads the watermark's second (`>=`),
        # would read the fill's ~250,000 view rows again and measure that, not its 10,000 changes.
        time.sleep(1.1)
        touch_one(sf)
        filled_at = time.time()
        channel = grpc.insecure_channel(sync_address)
        pids = {"sync": sync.popen.pid, "users": users.popen.pid, "emulator": sf.pid}
        first = first_full_run(channel, metadata, users_address, sf, create_job, ROLE_VALUES, pids, plain_url)
        job, full, counts, written = first.job, first.timed, first.timed.run.counts, first.written
        fetch_seconds, pages, records, insert_seconds = first.fetch_seconds, first.pages, first.records, first.insert
        held = slots(users_url)
        # Salesforce dates have whole seconds: change the org at least a second after the newest
        # date the full run saw (the role fill), or `LastModifiedDate > watermark` would miss it.
        time.sleep(max(0.0, filled_at + 1.1 - time.time()))
        changed, touched = change_rows(sf, wanted, seed)
        incremental = run_job(channel, metadata, job.name, jobs_pb2.RUN_MODE_INCREMENTAL, pids)
        # A second full run: every row now names its holder (nothing is written), and the job
        # holds assignments, so this one also scans them for stale ones (the first had none).
        repeat = run_job(channel, metadata, job.name, jobs_pb2.RUN_MODE_FULL, pids)
        rss = {"sync": peak_rss_mib(sync.popen.pid), "users": peak_rss_mib(users.popen.pid)}
        channel.close()

    floor = fetch_seconds + insert_seconds
    read = counts.rows_read
    where = "its own process" if mode == "process" else "this process (thread)"
    print(f"\n### ETM sync, {read:,} view rows, {backend()} — {dt.date.today().isoformat()}\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Org: seed {seed}, "
        f"{sf.view_rows:,} view rows (built in {sf.generated_seconds:.1f} s), {people:,} users seeded, {filled:,} "
        f"role-less territory members given a role; emulator in "
        f"{where}. The run sent {len(full.run.queries)} queries; the floor fetched the same {pages:,} pages "
        f"({records:,} records).\n"
    )
    print("| operation | rows | total s | rows/s | ÷ floor |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| floor: fetch + json.loads the run's pages | {records:,} records | {fetch_seconds:.2f} "
        f"| {records / fetch_seconds:,.0f} | |"
    )
    print(
        f"| floor: plain bulk insert of the rows the run wrote | {written:,} | {insert_seconds:.2f} "
        f"| {written / insert_seconds:,.0f} | |"
    )
    print(f"| **floor total** | {read:,} | {floor:.2f} | {read / floor:,.0f} | 1.0x |")
    print(
        f"| **RunJob FULL, end to end** | {read:,} | {full.seconds:.2f} | {read / full.seconds:,.0f} "
        f"| {full.seconds / floor:.1f}x |"
    )
    print(
        f"| RunJob INCREMENTAL after {changed:,} view rows changed ({touched} user associations) "
        f"| {incremental.run.counts.rows_read:,} | {incremental.seconds:.2f} "
        f"| {incremental.run.counts.rows_read / incremental.seconds:,.0f} | |"
    )
    print(
        f"| RunJob FULL again (the incremental's changes aside, nothing to write; stale scan) "
        f"| {repeat.run.counts.rows_read:,} | {repeat.seconds:.2f} "
        f"| {repeat.run.counts.rows_read / repeat.seconds:,.0f} "
        f"| {repeat.seconds / floor:.1f}x |"
    )
    # A full run writes each account's settled rows as soon as the next account is read.
    writes = counts.assigned + counts.updated
    read_all = full.first_seen(lambda r: r.counts.rows_read == read)
    first_write = full.first_seen(lambda r: r.counts.assigned + r.counts.updated > 0)
    last_write = full.first_seen(lambda r: r.counts.assigned + r.counts.updated == writes)
    conflicts = counts.skipped_by_reason["ROLE_HELD_BY_ANOTHER_ROW"]
    print(
        f"\nFull run: {counts_text(counts)}. Progress: every row read after {read_all:.1f} s; first write after "
        f"{first_write:.1f} s, the last after {last_write:.1f} s; then {full.seconds - last_write:.1f} s to SUCCEEDED "
        f"(the stale scan: ListAssignments of everything the job wrote, and the run's record). {held:,} assignments "
        f"held at the end (distinct account and role), one row written for each; {conflicts:,} rows gave a role "
        f"already settled on another user (newer row, or as new and first by user) and {written - held:,} named the "
        "same user again."
    )
    first_incremental = incremental.first_seen(lambda r: r.counts.assigned + r.counts.updated > 0)
    print(
        f"Incremental run: {counts_text(incremental.run.counts)}; {len(incremental.run.queries)} queries; "
        f"first write after {first_incremental:.1f} s."
    )
    print(f"Second full run: {counts_text(repeat.run.counts)}.")
    print_resources({"full": full, "incremental": incremental, "second full": repeat}, rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
