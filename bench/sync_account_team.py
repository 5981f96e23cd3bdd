"""Benchmark: a full Salesforce Account Team Members sync of about BENCH_TEAM_ACCOUNTS accounts'
teams (default 400,000 accounts, 1 to 4 members each: about 1,000,000 AccountTeamMember rows)
from the stand-in, end to end, beside a floor measured in the same run (the same pages fetched
and parsed, and a plain bulk insert of as many rows as the run wrote); then an incremental run
after BENCH_SYNC_CHANGED (default 10,000) team roles changed in the org.

Processes and databases as in bench/sync_etm.py, whose pieces this reuses. The job maps the four
standard team roles and reads `TeamMemberRole != null`, so every row read maps.

    .venv/bin/python -m bench.sync_account_team
    BENCH_TEAM_ACCOUNTS=40000 .venv/bin/python -m bench.sync_account_team
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m bench.sync_account_team
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import random
import sys

import grpc

from bench.harness import SECRET, backend, scratch_databases, users_service
from bench.sync_etm import (
    Salesforce,
    counts_text,
    create_connection,
    first_full_run,
    peak_rss_mib,
    print_resources,
    run_job,
    salesforce,
    seed_org_users,
    slots,
    sync_service,
)
from services.runtime.auth import mint_token
from services.runtime.db import Database
from steward.sync.v1 import jobs_pb2, jobs_pb2_grpc

ROLE_VALUES = {
    "Account Manager": "roles/success_manager",
    "Sales Rep": "roles/sales_manager",
    "Executive Sponsor": "roles/regional_sales_manager",
    "Lead Qualifier": "roles/lead_qualifier",
}
SWAP = {"Account Manager": "Sales Rep", "Sales Rep": "Account Manager"}


def create_job(channel: grpc.Channel, metadata: list[tuple[str, str]], sf: Salesforce) -> jobs_pb2.Job:
    connection = create_connection(channel, metadata, sf)
    settings = jobs_pb2.AccountTeamSettings(
        query_filter="TeamMemberRole != null", role_values=ROLE_VALUES, removals=jobs_pb2.REMOVALS_REPORT
    )
    return jobs_pb2_grpc.JobServiceStub(channel).CreateJob(
        jobs_pb2.CreateJobRequest(
            job=jobs_pb2.Job(
                display_name="Account teams benchmark",
                type=jobs_pb2.JOB_TYPE_CONNECTOR,
                connection=connection.name,
                account_team=settings,
            )
        ),
        metadata=metadata,
    )


def change_roles(sf: Salesforce, wanted: int, seed: int) -> int:
    """Swaps Account Manager <-> Sales Rep on `wanted` members, in a seeded random order."""
    members = sf.records(
        "SELECT Id, TeamMemberRole FROM AccountTeamMember WHERE TeamMemberRole IN ('Account Manager', 'Sales Rep')"
    )
    random.Random(seed).shuffle(members)
    for member in members[:wanted]:
        sf.org("set_team_role", member_id=member["Id"], role=SWAP[member["TeamMemberRole"]])
    return min(wanted, len(members))


def main() -> int:
    accounts = int(os.environ.get("BENCH_TEAM_ACCOUNTS", "400000"))
    wanted = int(os.environ.get("BENCH_SYNC_CHANGED", "10000"))
    seed = int(os.environ.get("BENCH_SYNC_SEED", "1"))
    token = mint_token(SECRET, "bench", roles=["admin"], ttl_seconds=4 * 3600)
    metadata = [("authorization", f"Bearer {token}")]
    # Users and territories in the proportions of the ETM benchmark's org; teams of 1 to 4.
    org_args: tuple[str, ...] = ("--accounts", str(accounts), "--users", str(max(12, accounts // 160)))
    org_args += ("--territories", str(max(4, accounts // 400)), "--team-members", "4")
    with (
        scratch_databases("users", "sync", "plain") as (users_url, sync_url, plain_url),
        salesforce(0, seed, "process", org_args) as sf,
        users_service(users_url) as (users, users_address),
        sync_service(sync_url, users_address) as (sync, sync_address),
    ):
        team_rows = sf.count("SELECT COUNT() FROM AccountTeamMember")
        db = Database(users_url)
        people = seed_org_users(db, [u["Email"] for u in sf.records("SELECT Email FROM User")])
        db.dispose()
        channel = grpc.insecure_channel(sync_address)
        pids = {"sync": sync.popen.pid, "users": users.popen.pid, "emulator": sf.pid}
        first = first_full_run(channel, metadata, users_address, sf, create_job, ROLE_VALUES, pids, plain_url)
        job, full, counts, written = first.job, first.timed, first.timed.run.counts, first.written
        fetch_seconds, pages, records, insert_seconds = first.fetch_seconds, first.pages, first.records, first.insert
        held = slots(users_url)
        # The generated org's dates are in the past: every change made now is after the watermark.
        changed = change_roles(sf, wanted, seed)
        incremental = run_job(channel, metadata, job.name, jobs_pb2.RUN_MODE_INCREMENTAL, pids)
        rss = {"sync": peak_rss_mib(sync.popen.pid), "users": peak_rss_mib(users.popen.pid)}
        channel.close()

    floor = fetch_seconds + insert_seconds
    read = counts.rows_read
    print(f"\n### Account Team Members sync, {read:,} rows, {backend()} — {dt.date.today().isoformat()}\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Org: seed {seed}, "
        f"{accounts:,} accounts, {team_rows:,} AccountTeamMember rows (built in {sf.generated_seconds:.1f} s), "
        f"{people:,} users seeded; stand-in in its own process. The run sent {len(full.run.queries)} query; the "
        f"floor fetched the same {pages:,} pages ({records:,} records).\n"
    )
    inc = incremental.run.counts.rows_read
    table = [
        ("floor: fetch + json.loads the run's pages", records, fetch_seconds, ""),
        ("floor: plain bulk insert of the rows the run wrote", written, insert_seconds, ""),
        ("**floor total**", read, floor, "1.0x"),
        ("**RunJob FULL, end to end**", read, full.seconds, f"{full.seconds / floor:.1f}x"),
        (f"RunJob INCREMENTAL after {changed:,} team roles changed", inc, incremental.seconds, ""),
    ]
    print("| operation | rows | total s | rows/s | ÷ floor |")
    print("|---|---:|---:|---:|---:|")
    for label, rows, seconds, ratio in table:
        print(f"| {label} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | {ratio} |")
    read_all = full.first_seen(lambda r: r.counts.rows_read == read)
    first_write = full.first_seen(lambda r: r.counts.assigned + r.counts.updated > 0)
    print(
        f"\nFull run: {counts_text(counts)}; {held:,} assignments held at the end. Every row read after "
        f"{read_all:.1f} s, first write after {first_write:.1f} s (rows come account by account: written as "
        "the next account begins)."
    )
    print(f"Incremental run: {counts_text(incremental.run.counts)}; query: {incremental.run.queries[0]}")
    print_resources({"full": full, "incremental": incremental}, rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
