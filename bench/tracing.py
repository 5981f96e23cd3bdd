"""Benchmark: what OpenTelemetry tracing costs the users and rules services (issue 19's targets:
tracing off under 3 % of throughput, on with 10 % sampling under 10 %), against the code from
before tracing existed, measured in the same run.

Four configurations, every run on fresh scratch databases and fresh service processes:

- baseline: the parent of the commit "tracing: OpenTelemetry on every server ...", checked out
  as a detached git worktree under the temporary folder (created when missing, removed
  afterwards if this bench created it); its services run from there (cwd and PYTHONPATH = the
  worktree, same interpreter, the generated stubs of this checkout, which only add a field);
- off: this checkout, OTEL_TRACES_EXPORTER=none (the default: nothing instrumented);
- on 10 %: OTLP over HTTP to a stand-in collector in this process (tests/otlp_receiver.py),
  sampler parentbased_traceidratio at 0.1;
- on 100 %: the same at 1.0, for context.

Workloads, per configuration and run:

- users: BENCH_TRACING_CALLS sequential UserService.GetUser calls from one client (after 50
  warm-up calls) over BENCH_TRACING_USERS seeded users: calls/s and p50 latency;
- rules: a users service and a rules service wired to it, one ACTIVE play (every new account
  gets a success manager: update_value, i.e. an assignment written in the users service);
  BENCH_TRACING_EVENTS new-account events through PublishEvents in calls of
  BENCH_TRACING_BATCH; runs applied per second from the first publish until no run is pending.

BENCH_TRACING_REPEATS rounds (default 3); within a round the configurations run in turn, the
order rotated each round. Tables show medians, every run's figure, and the ratio of medians to
the baseline's; PASS/MISS: off >= 0.97 x baseline, on 10 % >= 0.90 x baseline.

    make bench
    BENCH_TRACING_REPEATS=5 BENCH_TRACING_CALLS=5000 .venv/bin/python -m bench.tracing
    STEWARD_BENCH_DATABASE_URL=postgresql+psycopg://... .venv/bin/python -m bench.tracing
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import json_format

from bench.grpc_calls import measure, seed_users, summarize
from bench.harness import SECRET, backend, scratch_databases
from bench.rules import Bench, end_to_end, struct, wait_until_shared
from services.cli.health_probe import is_serving
from services.runtime.auth import mint_token
from services.runtime.db import Database
from steward.rules.v1 import events_pb2, plays_pb2
from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.otlp_receiver import OtlpReceiver
from tests.processes import ROOT, Process, free_port

TRACING_COMMIT = "^tracing: OpenTelemetry on every server"
TARGETS = {"off": 0.97, "on10": 0.90}  # throughput, as a fraction of the baseline's


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    cwd: Path  # the checkout whose services run
    env: dict[str, str]


@contextmanager
def service(config: Config, module: str, env: dict[str, str]) -> Iterator[tuple[Process, str]]:
    """`module` serving from the configuration's checkout; as tests/processes.py starts them."""
    port = free_port()
    prefix = module.removeprefix("services.").upper()
    settings = {
        "STEWARD_JWT_SECRET": SECRET,
        f"STEWARD_{prefix}_PORT": str(port),
        f"STEWARD_{prefix}_METRICS_PORT": "-1",
        "STEWARD_MIGRATE_ON_START": "true",
        "STEWARD_LOG_LEVEL": "warning",
        **config.env,
        **env,
    }
    server = Process([sys.executable, "-m", module, "serve"], settings, config.cwd)
    address = f"127.0.0.1:{port}"
    try:
        server.wait_for(lambda: is_serving(address), what="SERVING")
        if Path(f"/proc/{server.popen.pid}/cwd").resolve() != config.cwd.resolve():
            raise AssertionError(f"{module} of {config.label} does not run in {config.cwd}")
        yield server, address
    finally:
        server.popen.terminate()
        server.finish(timeout=120)  # a traced service exports what it holds on the way out
        server.close()


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


@contextmanager
def baseline_worktree() -> Iterator[tuple[Path, str]]:
    """A detached worktree of the commit before tracing; (its path, the commit)."""
    tracing_commit = git("log", "--format=%H", f"--grep={TRACING_COMMIT}", "-1")
    if not tracing_commit:
        raise SystemExit(f"no commit whose subject matches {TRACING_COMMIT!r}: the baseline is unknown")
    commit = git("rev-parse", f"{tracing_commit}^")
    path = Path(tempfile.gettempdir()) / f"steward-baseline-{commit[:10]}"
    created = not path.exists()
    if created:
        git("worktree", "add", "--detach", str(path), commit)
    elif git("-C", str(path), "rev-parse", "HEAD") != commit:
        raise SystemExit(f"{path} exists but is not a checkout of {commit}")
    try:
        yield path, commit
    finally:
        if created:
            git("worktree", "remove", "--force", str(path))


def check_baseline(config: Config) -> None:
    """The baseline's processes import the worktree's services, which know nothing of tracing."""
    if (config.cwd / "services/runtime/tracing.py").exists():
        raise AssertionError(f"{config.cwd} has services/runtime/tracing.py: not the code before tracing")
    probe = (
        "import importlib.util, services.runtime.server as s; "
        "print(s.__file__, importlib.util.find_spec('services.runtime.tracing') is None)"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=config.cwd,
        env={**os.environ, **config.env},
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if found != [str(config.cwd / "services/runtime/server.py"), "True"]:
        raise AssertionError(f"the baseline's processes would import {found}")


def configurations(worktree: Path, endpoint: str) -> list[Config]:
    traced = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
    }
    return [
        Config("baseline", "baseline (before tracing)", worktree, {"PYTHONPATH": str(worktree)}),
        Config("off", "off (OTEL_TRACES_EXPORTER=none)", ROOT, {"OTEL_TRACES_EXPORTER": "none"}),
        Config("on10", "on, 10 % sampled, OTLP/HTTP", ROOT, {**traced, "OTEL_TRACES_SAMPLER_ARG": "0.1"}),
        Config("on100", "on, 100 % sampled, OTLP/HTTP", ROOT, {**traced, "OTEL_TRACES_SAMPLER_ARG": "1.0"}),
    ]


@dataclass
class Runs:
    rates: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)  # ms
    spans: list[int] = field(default_factory=list)  # exported to the stand-in collector


def users_run(config: Config, calls: int, user_count: int) -> tuple[float, float]:
    """(calls/s, p50 ms) of sequential GetUser calls."""
    with (
        scratch_databases(f"users_{config.key}") as (url,),
        service(config, "services.users", {"STEWARD_USERS_DATABASE_URL": url, "STEWARD_USERS_SCIM_PORT": "0"}) as (
            _server,
            address,
        ),
    ):
        db = Database(url)
        ids = seed_users(db, user_count)
        db.dispose()
        metadata = [("authorization", f"Bearer {mint_token(SECRET, 'bench', roles=['admin'], ttl_seconds=3600)}")]
        with grpc.insecure_channel(address) as channel:
            users = users_pb2_grpc.UserServiceStub(channel)
            samples = measure(
                lambda i: users.GetUser(
                    users_pb2.GetUserRequest(name=f"users/{ids[(i * 7919) % len(ids)]}"), metadata=metadata
                ),
                calls,
            )
    rate, p50, _p99 = summarize(samples)
    return rate, p50


def rules_run(config: Config, count: int, batch: int) -> tuple[float, float]:
    """(runs applied/s from the first publish, PublishEvents call p50 ms) with one active play."""
    run = uuid.uuid4().hex[:8]
    metrics_port = free_port()
    with (
        scratch_databases(f"users_{config.key}", f"rules_{config.key}") as (users_url, rules_url),
        service(
            config, "services.users", {"STEWARD_USERS_DATABASE_URL": users_url, "STEWARD_USERS_SCIM_PORT": "0"}
        ) as (_users, users_address),
        service(
            config,
            "services.rules",
            {
                "STEWARD_RULES_DATABASE_URL": rules_url,
                "STEWARD_USERS_ADDRESS": users_address,
                "STEWARD_RULES_METRICS_PORT": str(metrics_port),
            },
        ) as (_rules, rules_address),
    ):
        db = Database(users_url)
        owner, csm = (f"users/{i}" for i in seed_users(db, 2))
        db.dispose()
        bench = Bench(users_address, rules_address)
        wait_until_shared([metrics_port])  # the executor holds every partition before the clock starts
        team = bench.team("Customer Success", [owner, csm])
        play = plays_pb2.Play(
            display_name="Route new accounts",
            owner=owner,
            origin_team=team,
            status=plays_pb2.PLAY_STATUS_ACTIVE,
            trigger=plays_pb2.Trigger(event_type=events_pb2.EVENT_TYPE_ACCOUNT_CREATED),
            actions=[
                json_format.ParseDict(
                    {"update_value": {"role": "roles/success_manager", "user": csm}}, plays_pb2.Action()
                )
            ],
        )
        bench.plays.CreatePlay(plays_pb2.CreatePlayRequest(play=play), metadata=bench.md)
        messages = [
            events_pb2.AccountEvent(
                event_id=f"tracing-{run}-{n}",
                account_id=f"001TRACE{n:07d}",
                type=events_pb2.EVENT_TYPE_ACCOUNT_CREATED,
                attributes=struct({"name": f"Account {n}", "segment": "SMB", "region": "emea", "arr": 10_000 + n}),
            )
            for n in range(count)
        ]
        users_db, rules_db = Database(users_url), Database(rules_url)
        try:
            e2e = end_to_end([bench], messages, batch, users_db, rules_db)
        finally:
            users_db.dispose()
            rules_db.dispose()
        totals = bench.stats()
        bench.close()
    if e2e.matches != count or totals["applied"] != count:
        raise AssertionError(f"{config.label}: {e2e.matches} matches, {dict(totals)} (expected {count} applied)")
    return count / e2e.drain_seconds, statistics.median(e2e.call_seconds) * 1000


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def verdict(key: str, ratio: float) -> str:
    if key not in TARGETS:
        return "(context)" if key != "baseline" else ""
    return f"{'PASS' if ratio >= TARGETS[key] else 'MISS'} (≥ {TARGETS[key]:.2f})"


def table(title: str, unit: str, p50_label: str, configs: list[Config], results: dict[str, Runs]) -> None:
    """Ratio of medians to the baseline's (the verdict's), and each round's ratio to the
    baseline run of the same round (neighbours in time: how much of a gap is the machine's)."""
    baseline = results["baseline"].rates
    base = statistics.median(baseline)
    print(f"\n{title}\n")
    print(
        f"| configuration | {unit} (median) | each round | ÷ baseline | ÷ baseline, each round "
        f"| {p50_label} | spans exported per run | target |"
    )
    print("|---|---:|---|---:|---|---:|---:|---|")
    for config in configs:
        runs = results[config.key]
        median = statistics.median(runs.rates)
        paired = ", ".join(f"{r / b:.2f}" for r, b in zip(runs.rates, baseline, strict=True))
        print(
            f"| {config.label} | {median:,.0f} | {', '.join(f'{r:,.0f}' for r in runs.rates)} "
            f"| {median / base:.3f} | {paired} | {statistics.median(runs.p50s):.2f} "
            f"| {statistics.median(runs.spans):,.0f} | {verdict(config.key, median / base)} |"
        )


def main() -> int:
    calls = int(os.environ.get("BENCH_TRACING_CALLS", "2000"))
    user_count = int(os.environ.get("BENCH_TRACING_USERS", "1000"))
    count = int(os.environ.get("BENCH_TRACING_EVENTS", "2000"))
    batch = int(os.environ.get("BENCH_TRACING_BATCH", "100"))
    repeats = int(os.environ.get("BENCH_TRACING_REPEATS", "3"))
    with baseline_worktree() as (worktree, commit), OtlpReceiver() as receiver:
        configs = configurations(worktree, receiver.endpoint)
        check_baseline(configs[0])
        users: dict[str, Runs] = {c.key: Runs() for c in configs}
        rules: dict[str, Runs] = {c.key: Runs() for c in configs}
        for repeat in range(repeats):
            for config in configs[repeat % len(configs) :] + configs[: repeat % len(configs)]:
                for results, workload in (
                    (users, lambda c: users_run(c, calls, user_count)),
                    (rules, lambda c: rules_run(c, count, batch)),
                ):
                    before = len(receiver.spans)
                    rate, p50 = workload(config)
                    results[config.key].rates.append(rate)
                    results[config.key].p50s.append(p50)
                    results[config.key].spans.append(len(receiver.spans) - before)
    # The services export spans when tracing is on, and only then: every run at 100 %; at 10 %
    # some (a rules run has only a few dozen traces: one may well have none sampled).
    spans = {c.key: users[c.key].spans + rules[c.key].spans for c in configs}
    wrong = [
        f"{c.label}: spans exported per run {spans[c.key]}"
        for c in configs
        if (c.key in ("baseline", "off") and max(spans[c.key]) > 0)
        or (c.key == "on10" and sum(spans[c.key]) == 0)
        or (c.key == "on100" and min(spans[c.key]) == 0)
    ]
    print(f"\n### tracing overhead, users and rules services, {backend()} — {dt.date.today().isoformat()}\n")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores ({cpu_model()}), Python "
        f"{platform.python_version()}. Baseline: {commit[:10]}, the parent of the tracing commit, run from a "
        f"worktree. Every run on fresh databases and service processes; medians of {repeats} runs, "
        "configurations interleaved (order rotated each round); the stand-in OTLP collector runs in the "
        "benchmark's process."
    )
    table(
        f"users service: {calls:,} sequential UserService.GetUser calls, 1 client, {user_count:,} users",
        "calls/s",
        "p50 ms",
        configs,
        users,
    )
    table(
        f"rules service → users service: {count:,} new-account events, PublishEvents in calls of {batch:,}, "
        "one play setting an assignment; runs applied per second from the first publish until none is pending",
        "runs/s",
        "PublishEvents p50 ms",
        configs,
        rules,
    )
    for line in wrong:
        print(f"WRONG: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
