"""`make demo`: a Salesforce sync end to end on a generated org, for a newcomer to watch.

Starts the Salesforce stand-in with 10,000 generated AccountUserTerritory2View rows (and account
teams for every account), a users service and a sync service, then does through the public gRPC
APIs what an admin would: creates the users the org names (UpsertUsers: CREATED users, which
integrations may assign) and the one role it lacks, a connection to the stand-in and a job with a
role table, reading Enterprise Territory Management (--source etm, the default) or Account Team
Members (--source account-team-members); previews, validates and runs the job; shows a few account
teams; then stops everything, or with --keep leaves it running until Ctrl-C so you can explore
with the commands it prints.

Everything lives in ./var/demo (emptied at each start; logs in ./var/demo/logs) and on free
ports, so the data, secret and ports of `make run` (./var) are never touched.

    make demo
    .venv/bin/python scripts/demo.py --keep
    .venv/bin/python scripts/demo.py --rows 50000 --seed 7
    .venv/bin/python scripts/demo.py --source account-team-members
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import grpc

from services.cli.health_probe import is_serving
from services.runtime.auth import mint_token
from services.users.service_layer.bootstrap import bootstrap_admin_id
from steward.sync.v1 import connections_pb2, connections_pb2_grpc, jobs_pb2, jobs_pb2_grpc
from steward.users.v1 import assignments_pb2, assignments_pb2_grpc, users_pb2, users_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "var" / "demo"
ADMIN_EMAIL = "admin@steward.local"
API_VERSION = "62.0"
NEW_ROLES = {"regional_sales_manager": "Regional Sales Manager"}  # the two others come with Steward


@dataclass(frozen=True)
class Source:
    """What the demo's job reads: the connector, its role table and filter."""

    name: str
    title: str
    role_field: str
    role_values: dict[str, str]  # the org's role values -> Steward account roles
    # Members without a role are left out by the job's SOQL filter, so every row read maps to a role.
    query_filter: str
    queries_note: str

    def job(self, connection: str) -> jobs_pb2.Job:
        job = jobs_pb2.Job(display_name=f"Demo {self.title}", connection=connection)
        if self.name == "etm":
            job.type = jobs_pb2.JOB_TYPE_ETM_ACCOUNT_ASSIGNMENT
            job.etm.CopyFrom(jobs_pb2.EtmSettings(query_filter=self.query_filter, role_values=self.role_values))
        else:
            job.type = jobs_pb2.JOB_TYPE_CONNECTOR
            job.account_team.CopyFrom(
                jobs_pb2.AccountTeamSettings(query_filter=self.query_filter, role_values=self.role_values)
            )
        return job


SOURCES = {
    "etm": Source(
        "etm",
        "ETM assignments",
        "RoleInTerritory2",
        {
            "CSM": "roles/success_manager",
            "Account Executive": "roles/sales_manager",
            "Sales Manager": "roles/regional_sales_manager",
        },
        "RoleInTerritory2 != null",
        "the org-scale read joins two association objects in the service",
    ),
    "account-team-members": Source(
        "account-team-members",
        "account team members",
        "TeamMemberRole",
        {
            "Account Manager": "roles/success_manager",
            "Sales Rep": "roles/sales_manager",
            "Executive Sponsor": "roles/regional_sales_manager",
        },
        "TeamMemberRole != null",
        "AccountTeamMember is read at org scale in one query, ordered by account",
    ),
}

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6") if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """If the demo is killed outright, its children get SIGTERM too (as `steward dev` does)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str = "") -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say(f"\n== {title}")


class Child:
    """A child process whose output goes to ./var/demo/logs/<name>.log."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.log = DATA / "logs" / f"{name}.log"
        self._out: IO[bytes] = self.log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], what: str, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not ready():
            if self.popen.poll() is not None:
                raise SystemExit(f"{self.name} exited (code {self.popen.returncode}) before {what}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: no {what} after {seconds:.0f} s:\n{self.tail()}")
            time.sleep(0.1)

    def stop(self) -> bool:
        """SIGTERM, then up to 30 s for the drain; True if it ended on its own."""
        clean = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                clean = False
        self._out.close()
        return clean


class Emulator:
    """The running emulator, seen over HTTP: its token and SOQL queries."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.url = str(info["url"])
        form = {
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
        }
        request = urllib.request.Request(info["token_url"], data=urllib.parse.urlencode(form).encode(), method="POST")
        with urllib.request.urlopen(request, timeout=30) as reply:
            self._token = str(json.loads(reply.read())["access_token"])

    def query(self, soql: str) -> Iterator[dict[str, Any]]:
        path = f"/services/data/v{API_VERSION}/query?{urllib.parse.urlencode({'q': soql})}"
        while path:
            request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self._token}"})
            with urllib.request.urlopen(request, timeout=30) as reply:
                page = json.loads(reply.read())
            yield from page["records"]
            path = "" if page["done"] else str(page["nextRecordsUrl"])

    def admin(self, method: str, **arguments: Any) -> Any:
        """An Org method through the emulator's admin endpoint (no token: these are test controls)."""
        request = urllib.request.Request(
            f"{self.url}/__emulator/org/{method}", data=json.dumps(arguments).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read())["result"]


def start_emulator(rows: int, seed: int) -> tuple[Child, Emulator]:
    args = ["-m", "tools.salesforce_standin", "--port", "0", "--rows", str(rows), "--seed", str(seed)]
    child = Child("emulator", [*args, "--json"], _environment({}))

    def started() -> bool:
        return child.log.exists() and child.log.read_text().strip().startswith("{")

    child.wait_until(started, "its address")
    return child, Emulator(json.loads(child.log.read_text().splitlines()[0]))


def _environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without any STEWARD_ setting (a shell set up for `make run` or a
    shared database must not leak in), plus the demo's."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STEWARD_")}
    return base | extra


def start_services(secret: str) -> tuple[list[Child], str, str]:
    users_port, sync_port = free_port(), free_port()
    users_address, sync_address = f"127.0.0.1:{users_port}", f"127.0.0.1:{sync_port}"
    env = _environment(
        {
            "STEWARD_JWT_SECRET": secret,
            "STEWARD_DATA_DIR": str(DATA),  # SQLite databases ./var/demo/users.db and sync.db
            "STEWARD_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "STEWARD_LOG_LEVEL": "warning",
            "STEWARD_USERS_PORT": str(users_port),
            "STEWARD_USERS_METRICS_PORT": "-1",
            "STEWARD_USERS_SCIM_PORT": "-1",
            "STEWARD_SYNC_PORT": str(sync_port),
            "STEWARD_SYNC_METRICS_PORT": "-1",
            "STEWARD_USERS_ADDRESS": users_address,
        }
    )
    children = [
        Child("users", ["-m", "services.users", "serve"], env),
        Child("sync", ["-m", "services.sync", "serve"], env),
    ]
    for child, address in zip(children, (users_address, sync_address), strict=True):
        child.wait_until(lambda a=address: is_serving(a), "SERVING")  # type: ignore[misc]
    return children, users_address, sync_address


class Demo:
    def __init__(self, users_address: str, sync_address: str, token: str, emulator: Emulator, source: Source) -> None:
        self.source = source
        self.md = [("authorization", f"Bearer {token}")]
        self.emulator = emulator
        self._users_channel = grpc.insecure_channel(users_address)
        self._sync_channel = grpc.insecure_channel(sync_address)
        self.users = users_pb2_grpc.UserServiceStub(self._users_channel)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(self._users_channel)
        self.connections = connections_pb2_grpc.ConnectionServiceStub(self._sync_channel)
        self.jobs = jobs_pb2_grpc.JobServiceStub(self._sync_channel)
        self.email_of: dict[str, str] = {}  # "users/{uid}" -> email

    def close(self) -> None:
        self._users_channel.close()
        self._sync_channel.close()

    def create_users(self) -> None:
        step("1. Users: everyone the org names, through UserService.UpsertUsers")
        people = list(self.emulator.query("SELECT Email, FirstName, LastName FROM User ORDER BY Email"))
        created = 0
        for start in range(0, len(people), 1000):  # at most 1,000 rows a call
            rows = [
                users_pb2.UpsertUserRow(
                    email=p["Email"],
                    first_name=p["FirstName"] or "",
                    last_name=p["LastName"],
                    license=users_pb2.LICENSE_PRACTITIONER,
                )
                for p in people[start : start + 1000]
            ]
            reply = self.users.UpsertUsers(users_pb2.UpsertUsersRequest(rows=rows), metadata=self.md)
            for outcome in reply.outcomes:
                if outcome.result == users_pb2.UpsertUserOutcome.RESULT_FAILED:
                    raise SystemExit(f"UpsertUsers refused {outcome.email}: {outcome.reason} {outcome.description}")
                created += outcome.result == users_pb2.UpsertUserOutcome.RESULT_CREATED
                self.email_of[outcome.user] = outcome.email
        say(
            f"{created} users created, status CREATED (not invited: integrations may still assign them),"
            f" e.g. {', '.join(p['Email'] for p in people[:3])}"
        )

    def create_roles(self) -> None:
        step("2. Account roles for the job's role table")
        reply = self.assignments.ListRoles(assignments_pb2.ListRolesRequest(page_size=100), metadata=self.md)
        existing = {role.key for role in reply.roles}
        for key, display_name in NEW_ROLES.items():
            if key not in existing:
                self.assignments.CreateRole(
                    assignments_pb2.CreateRoleRequest(
                        role=assignments_pb2.Role(
                            key=key,
                            display_name=display_name,
                            source=assignments_pb2.ROLE_SOURCE_EDITABLE,
                            empty_value=assignments_pb2.EMPTY_VALUE_KEEP_EXISTING,
                        )
                    ),
                    metadata=self.md,
                )
                say(f"created roles/{key} ({display_name})")
        for value, role in self.source.role_values.items():
            say(f"  {self.source.role_field} {value!r:<20} -> {role}")
        say(f"  rows with no {self.source.role_field} are left out by the job's filter: {self.source.query_filter}")

    def create_job(self) -> jobs_pb2.Job:
        step(f"3. A connection to the emulated org, and a job reading its {self.source.title}")
        info = self.emulator.info
        connection = self.connections.CreateConnection(
            connections_pb2.CreateConnectionRequest(
                connection=connections_pb2.Connection(
                    display_name="Demo org (emulator)",
                    instance_url=self.emulator.url,
                    api_version=API_VERSION,
                    oauth=connections_pb2.OAuthSettings(
                        grant=connections_pb2.O_AUTH_GRANT_CLIENT_CREDENTIALS,
                        client_id=info["client_id"],
                        client_secret=info["client_secret"],
                    ),
                )
            ),
            metadata=self.md,
        )
        test = self.connections.TestConnection(
            connections_pb2.TestConnectionRequest(name=connection.name), metadata=self.md
        )
        say(f"{connection.name} -> {connection.instance_url}: TestConnection ok={test.ok} {test.message}".rstrip())
        job = self.jobs.CreateJob(jobs_pb2.CreateJobRequest(job=self.source.job(connection.name)), metadata=self.md)
        settings = job.etm if job.HasField("etm") else job.account_team
        say(f"{job.name} ({job.display_name}), connector {job.connector}")
        say(f"  fields: {', '.join(settings.fields)}")
        say(f"  filter: {settings.query_filter}   removals: {jobs_pb2.Removals.Name(settings.removals)}")
        return job

    def preview(self, job: jobs_pb2.Job) -> list[str]:
        step("4. PreviewJob: the first 5 rows as Salesforce returns them and as they map")
        reply = self.jobs.PreviewJob(jobs_pb2.PreviewJobRequest(name=job.name, row_count=5), metadata=self.md)
        say(f"first query: {reply.query}")
        say(f"{'account':<20} {'user email':<36} {'role value -> role':<48} problems")
        for row in reply.rows:
            m = row.mapped
            role = f"{m.role_value or '(none)'} -> {m.role or '-'}"
            problems = "; ".join(p.reason for p in row.problems) or "ok"
            say(f"{m.account_id:<20} {m.user_email:<36} {role:<48} {problems}")
        # Accounts with a row that maps first: their teams are not empty after the run.
        ordered = sorted(reply.rows, key=lambda row: bool(row.problems))
        return list(dict.fromkeys(row.mapped.account_id for row in ordered))

    def validate(self, job: jobs_pb2.Job) -> None:
        step("5. ValidateJob: counts over every row (writes nothing)")
        report = self.jobs.ValidateJob(jobs_pb2.ValidateJobRequest(name=job.name), metadata=self.md)
        say(f"rows {report.rows:,}, applicable {report.applicable_rows:,}")
        for problem in report.row_problems:
            say(f"  {problem.reason}: {problem.rows:,} rows")

    def run(self, job: jobs_pb2.Job) -> jobs_pb2.Run:
        step("6. RunJob FULL: progress as the service streams it")
        started = time.monotonic()
        last = None
        for message in self.jobs.RunJob(
            jobs_pb2.RunJobRequest(name=job.name, mode=jobs_pb2.RUN_MODE_FULL), metadata=self.md
        ):
            last = message.run
            c = last.counts
            state = jobs_pb2.RunState.Name(last.state).removeprefix("RUN_STATE_")
            say(
                f"  {time.monotonic() - started:5.1f}s {state:<9}"
                f" read {c.rows_read:>6,}  assigned {c.assigned:>5,}  updated {c.updated:>5,}"
                f"  unchanged {c.unchanged:>5,}  skipped {c.skipped:>5,}"
            )
        assert last is not None
        if last.state != jobs_pb2.RUN_STATE_SUCCEEDED:
            raise SystemExit(f"the run failed: {last.error_code} {last.error_message}")
        skipped = ", ".join(f"{reason} {n:,}" for reason, n in sorted(last.counts.skipped_by_reason.items()))
        say(f"{last.name}: SUCCEEDED; skipped by reason: {skipped or 'none'}")
        say(f"queries sent ({len(last.queries)}): {self.source.queries_note}")
        for soql in last.queries:
            say(f"  {soql}")
        return last

    def teams(self, accounts: list[str]) -> None:
        step("7. Account teams now (AssignmentService.GetAccountTeam)")
        say(f"An account has one holder per role: when several of its rows share a {self.source.role_field},")
        say("the newest row wins, ties to the lowest user (the others are skipped as ROLE_HELD_BY_ANOTHER_ROW).")
        for account in accounts:
            team = self.assignments.GetAccountTeam(
                assignments_pb2.GetAccountTeamRequest(account_id=account), metadata=self.md
            )
            say(f"{account}:")
            for a in team.assignments:
                say(f"  {a.role:<32} {self.email_of.get(a.user, a.user)}")


def _org_change(emulator: Emulator, source: Source) -> tuple[str, str, str]:
    """(what changes, the stand-in's org method, its arguments) for an incremental run to pick up."""
    if source.name == "etm":
        association = next(
            emulator.query(
                "SELECT UserId, Territory2Id FROM UserTerritory2Association WHERE IsActive = true"
                " AND Territory2.Territory2Model.State = 'Active' AND RoleInTerritory2 = 'CSM' LIMIT 1"
            )
        )
        arguments = {
            "user_id": association["UserId"],
            "territory_id": association["Territory2Id"],
            "role": "Account Executive",
        }
        return "a CSM becomes Account Executive in one territory", "set_role", json.dumps(arguments)
    member = next(emulator.query("SELECT Id FROM AccountTeamMember WHERE TeamMemberRole = 'Account Manager' LIMIT 1"))
    arguments = {"member_id": member["Id"], "role": "Sales Rep"}
    return "an account manager becomes a sales rep on one team", "set_team_role", json.dumps(arguments)


def explore(
    users: str, sync: str, token: str, job: jobs_pb2.Job, account: str, emulator: Emulator, source: Source, keep: bool
) -> None:
    step("Explore further" + ("" if keep else " (run `.venv/bin/python scripts/demo.py --keep` to keep it up)"))
    what, method, change = _org_change(emulator, source)
    lines = [
        "In another shell, at the repository root:",
        f"export STEWARD_TOKEN={token}",
        f"export STEWARD_USERS_ADDRESS={users} STEWARD_SYNC_ADDRESS={sync}",
        f".venv/bin/steward sync jobs get {job.uid}",
        f".venv/bin/steward sync preview {job.uid} --rows 20",
        f".venv/bin/steward sync runs {job.uid}",
        f".venv/bin/steward sync validate {job.uid}",
        ".venv/bin/steward roles list",
        f"# change the org ({what}), then read only what changed:",
        f"curl -s -X POST {emulator.url}/__emulator/org/{method} -d '{change}'; echo",
        f".venv/bin/steward sync run {job.uid} --mode incremental --follow",
        f'grpcurl -plaintext -H "authorization: Bearer $STEWARD_TOKEN" -d \'{{"account_id": "{account}"}}\' \\',
        f"  {users} steward.users.v1.AssignmentService/GetAccountTeam",
        f'grpcurl -plaintext -H "authorization: Bearer $STEWARD_TOKEN" {sync} list',
        f"Emulator controls (faults, latency, org changes): {emulator.url}/__emulator/ ; logs: {DATA / 'logs'}",
    ]
    say("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="about this many AccountUserTerritory2View rows")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--source", choices=sorted(SOURCES), default="etm", help="what the job reads (default etm)")
    parser.add_argument("--keep", action="store_true", help="keep everything running until Ctrl-C")
    args = parser.parse_args(argv)

    shutil.rmtree(DATA, ignore_errors=True)  # the demo's own folder: each demo starts empty
    (DATA / "logs").mkdir(parents=True)
    secret = secrets.token_urlsafe(48)  # this demo's own, never ./var's dev secret
    token = mint_token(secret, bootstrap_admin_id(ADMIN_EMAIL), ttl_seconds=12 * 3600)
    children: list[Child] = []
    try:
        step(f"Starting the Salesforce stand-in ({args.rows:,} rows, seed {args.seed}), users and sync services")
        emulator_child, emulator = start_emulator(args.rows, args.seed)
        children.append(emulator_child)
        objects = emulator.info["objects"]
        say(
            f"emulator  {emulator.url}: {emulator.info['view_rows']:,} view rows,"
            f" {emulator.info['team_rows']:,} account team members, {objects['Account']:,} accounts,"
            f" {objects['User']:,} users, {objects['Territory2']:,} territories"
        )
        services, users_address, sync_address = start_services(secret)
        children += services
        say(f"users     {users_address}\nsync      {sync_address}\ndata      {DATA} (SQLite), logs in {DATA / 'logs'}")
        say(f"acting as the bootstrap global admin {ADMIN_EMAIL}")

        source = SOURCES[args.source]
        demo = Demo(users_address, sync_address, token, emulator, source)
        try:
            demo.create_users()
            demo.create_roles()
            job = demo.create_job()
            accounts = demo.preview(job)
            demo.validate(job)
            demo.run(job)
            busiest = [account for account, _rows in emulator.admin("accounts_with_rows")[:2]]
            demo.teams(list(dict.fromkeys([accounts[0], *(busiest if source.name == "etm" else accounts[1:3])])))
        finally:
            demo.close()
        explore(users_address, sync_address, token, job, accounts[0], emulator, source, args.keep)
        if args.keep:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            say("\nRunning; Ctrl-C stops everything.")
            while not stop.wait(0.5):
                dead = [c.name for c in children if c.popen.poll() is not None]
                if dead:
                    say(f"{', '.join(dead)} stopped unexpectedly; stopping the rest")
                    return 1
        return 0
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    except grpc.RpcError as error:
        say(f"\ncall failed: {error.code().name}: {error.details()}")
        return 1
    finally:
        clean = all([child.stop() for child in reversed(children)])
        say("\nstopped: " + ("everything, cleanly" if clean else "everything (some had to be killed)"))


if __name__ == "__main__":
    sys.exit(main())
