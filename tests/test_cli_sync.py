"""`steward sync ...` against real users and sync servers and the Salesforce stand-in, in process."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.cli.sync_cmd import format_every, parse_every, parse_roles
from services.runtime.auth import mint_token
from steward.sync.v1 import jobs_pb2
from tests.conftest import JWT_SECRET
from tests.test_sync_etm import SyncApi, sync_api  # noqa: F401  (the fixture, used by name)

SECRET_ENV = "ACME_SF_SECRET"
FILTER = "roleinterritory2 in ('CSM', 'Account Executive', 'Sales Manager')"
CANONICAL_FILTER = "RoleInTerritory2 IN ('CSM', 'Account Executive', 'Sales Manager')"


@dataclass
class Cli:
    env: dict[str, str]
    api: SyncApi

    def __call__(self, *args: str, input: str | None = None) -> tuple[int, str]:
        """`steward sync ARGS` in process: exit code and output (stdout and stderr). The servers
        run in this process too and log to whatever sys.stdout is: their JSON lines are dropped."""
        result = CliRunner().invoke(app, ["sync", *args], env=self.env, input=input)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        lines = [line for line in result.output.splitlines(keepends=True) if not line.startswith('{"service": ')]
        return result.exit_code, "".join(lines)

    def json(self, *args: str) -> Any:
        code, out = self(*args, "--json")
        assert code == 0, out
        return json.loads(out)

    @property
    def md(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.env['STEWARD_TOKEN']}")]

    def connect(self, name: str = "Acme org") -> str:
        code, out = self(
            "connections",
            "create",
            "--name",
            name,
            "--instance-url",
            self.api.salesforce.url,
            "--api-version",
            "62.0",
            "--client-id",
            self.api.salesforce.client_id,
            "--client-secret-env",
            SECRET_ENV,
        )
        assert code == 0, out
        return found(r"connections/[0-9a-f-]{36}", out)

    def make_job(self, name: str = "Acme ETM", *extra: str) -> str:
        code, out = self(
            "jobs",
            "create",
            "--name",
            name,
            "--connection",
            "Acme org",
            "--filter",
            FILTER,
            "--role",
            "CSM=success_manager",
            "--role",
            "Account Executive=roles/sales_manager",
            *extra,
        )
        assert code == 0, out
        return found(r"jobs/[0-9a-f-]{36}", out)


@pytest.fixture
def cli(sync_api) -> Cli:  # noqa: F811
    token = mint_token(JWT_SECRET, "cli-tests", roles=["admin"])
    env = {
        "STEWARD_SYNC_ADDRESS": sync_api.sync.address,
        "STEWARD_USERS_ADDRESS": sync_api.users.running.address,
        "STEWARD_TOKEN": token,
        SECRET_ENV: sync_api.salesforce.client_secret,
        "COLUMNS": "250",
    }
    return Cli(env, sync_api)


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, text
    return match.group(0)


def row(out: str, *cells: str) -> bool:
    """Whether a table line holds these cells, in this order (others may come between)."""
    for line in out.splitlines():
        found = iter(c.strip() for c in line.split("│"))
        if all(cell in found for cell in cells):
            return True
    return False


def finish(cli: Cli, job: str) -> str:
    """The state of the job's newest run, once it is no longer running."""
    deadline = time.monotonic() + 30
    while True:
        newest = cli.api.jobs.ListRuns(jobs_pb2.ListRunsRequest(job=job), metadata=cli.md).runs[0]
        if newest.state != jobs_pb2.RUN_STATE_RUNNING or time.monotonic() > deadline:
            return jobs_pb2.RunState.Name(newest.state)
        time.sleep(0.1)


def test_connections_take_the_secret_from_the_environment_or_stdin_and_never_show_it(cli, tmp_path: Path):
    secret = cli.api.salesforce.client_secret
    name = cli.connect()
    code, out = cli("connections", "test", "Acme org")
    assert (code, out.strip()) == (0, f"{name}: ok (token and query)")
    code, out = cli("connections", "list")
    assert code == 0 and row(out, name, "Acme org", cli.api.salesforce.url, "62.0", "client-credentials", "stored")
    assert secret not in out
    listed = cli.json("connections", "list")
    assert [c["display_name"] for c in listed] == ["Acme org"]
    assert secret not in json.dumps(listed) and '"client_secret"' not in json.dumps(listed)
    code, out = cli("connections", "get", name)
    assert code == 0 and row(out, "client secret", "stored") and secret not in out

    # A secret on the command line is refused before anything is sent; '-' reads it from stdin.
    base = ["connections", "create", "--instance-url", cli.api.salesforce.url, "--client-id", "wrong"]
    code, out = cli(*base, "--name", "Typed", "--client-secret", "hunter2")
    assert code == 2 and "shell history" in out
    code, out = cli(*base, "--name", "Piped", "--client-secret", "-", input="not-the-secret\n")
    assert code == 0, out
    code, out = cli("connections", "test", "Piped")
    assert code == 1 and "token failed: invalid_client" in out

    # The JWT bearer grant: the key comes from a file (the stand-in accepts HS256 assertions).
    key = tmp_path / "key"
    key.write_text("an HS256 key the stand-in does not check" * 2)
    code, out = cli(
        "connections",
        "create",
        "--name",
        "Bearer",
        "--instance-url",
        cli.api.salesforce.url,
        "--client-id",
        cli.api.salesforce.client_id,
        "--grant",
        "jwt-bearer",
        "--username",
        cli.api.salesforce.username,
        "--private-key-file",
        str(key),
    )
    assert code == 0, out
    assert cli("connections", "test", "Bearer")[0] == 0
    code, out = cli("connections", "get", "Bearer")
    assert row(out, "private key", "stored") and row(out, "username", cli.api.salesforce.username)

    code, out = cli("connections", "delete", "Piped")
    assert code == 0 and "deleted connections/" in out
    code, out = cli("connections", "get", "Piped")
    assert code == 1 and "no connection is named 'Piped'" in out


def test_jobs_are_created_with_a_filter_and_a_role_table_and_updated_in_part(cli):
    connection = cli.connect()
    job = cli.make_job()
    [saved] = cli.json("jobs", "list")
    assert saved["name"] == job and saved["connection"] == connection
    assert saved["etm"]["query_filter"] == CANONICAL_FILTER
    assert saved["etm"]["role_values"] == {
        "CSM": "roles/success_manager",
        "Account Executive": "roles/sales_manager",
    }
    assert saved["state"] == "JOB_STATE_DRAFT"
    code, out = cli("jobs", "list")
    assert code == 0 and row(out, job, "Acme ETM", "draft", "Acme org", CANONICAL_FILTER)
    code, out = cli("jobs", "get", "Acme ETM")
    assert code == 0 and row(out, "roles", "Account Executive=sales_manager, CSM=success_manager")
    assert row(out, "connection", f"Acme org ({connection})")

    code, out = cli("jobs", "update", "Acme ETM", "--role", "Sales Manager=sales_manager", "--role", "CSM=")
    assert code == 0, out
    updated = cli.json("jobs", "get", job)
    assert updated["etm"]["role_values"] == {
        "Account Executive": "roles/sales_manager",
        "Sales Manager": "roles/sales_manager",
    }
    assert updated["etm"]["query_filter"] == CANONICAL_FILTER
    code, out = cli("jobs", "update", job, "--every", "1h", "--state", "active", "--filter", "")
    assert code == 0, out
    updated = cli.json("jobs", "get", job)
    assert (updated["run_interval"], updated["state"]) == ("3600s", "JOB_STATE_ACTIVE")
    assert "query_filter" not in updated["etm"]
    code, out = cli("jobs", "update", job, "--every", "1m")
    assert code == 1 and "RUN_INTERVAL_INVALID" in out

    code, out = cli("connections", "delete", "Acme org")
    assert code == 1 and "CONNECTION_IN_USE" in out
    code, out = cli("jobs", "delete", "Acme ETM")
    assert (code, out.strip()) == (0, f"deleted {job}")
    assert cli.json("jobs", "list") == []


def test_an_account_team_job_is_created_updated_and_shown_like_an_etm_one(cli):
    cli.connect()
    code, out = cli(
        "jobs",
        "create",
        "--name",
        "Acme teams",
        "--connection",
        "Acme org",
        "--connector",
        "salesforce-account-team",
        "--filter",
        "TeamMemberRole != null",
        "--role",
        "Account Manager=success_manager",
    )
    assert code == 0, out
    job = found(r"jobs/[0-9a-f-]{36}", out)
    saved = cli.json("jobs", "get", job)
    assert (saved["type"], saved["connector"]) == ("JOB_TYPE_CONNECTOR", "salesforce-account-team")
    assert saved["account_team"]["role_values"] == {"Account Manager": "roles/success_manager"}
    assert "etm" not in saved
    code, out = cli("jobs", "update", job, "--role", "Sales Rep=sales_manager", "--removals", "mirror")
    assert code == 0, out
    updated = cli.json("jobs", "get", job)["account_team"]
    assert updated["role_values"] == {
        "Account Manager": "roles/success_manager",
        "Sales Rep": "roles/sales_manager",
    }
    assert (updated["removals"], updated["query_filter"]) == ("REMOVALS_MIRROR", "TeamMemberRole != null")
    code, out = cli("jobs", "get", job)
    assert code == 0 and row(out, "connector", "salesforce-account-team") and row(out, "object", "AccountTeamMember")
    code, out = cli("jobs", "create", "--name", "X", "--connection", "Acme org", "--connector", "hubspot")
    assert code != 0 and "salesforce-etm, salesforce-account-team" in out


def test_a_bad_filter_prints_where_it_breaks_and_saves_nothing(cli):
    cli.connect()
    code, out = cli(
        "jobs",
        "create",
        "--name",
        "Broken",
        "--connection",
        "Acme org",
        "--role",
        "CSM=success_manager",
        "--filter",
        "RoleInTerritory2 = 'CSM' OR",
    )
    assert code == 1
    assert out.startswith("INVALID_ARGUMENT: the job is invalid: job.etm.query_filter\n"), out
    assert "job.etm.query_filter: invalid query filter at position 27: unexpected end of the filter" in out
    assert "QUERY_FILTER_INVALID" in out
    assert cli.json("jobs", "list") == []
    code, out = cli("jobs", "create", "--name", "Nowhere", "--connection", "No such org")
    assert code == 1 and "no connection is named 'No such org'" in out


def test_preview_and_validate_show_the_rows_with_problems(cli):
    cli.connect()
    cli.make_job()
    code, out = cli("preview", "Acme ETM", "--rows", "50")
    assert code == 0, out
    assert "10 row(s), 4 with problems" in out
    assert row(out, "ann@acme.io", "Ann", "CSM → success_manager")
    assert row(out, "bob@acme.io", "Bob", "Account Executive → sales_manager")
    unknown = "USER_NOT_FOUND: no user with email ghost@acme.io"
    assert row(out, "ghost@acme.io", "Ghost", "CSM → success_manager", unknown)
    assert row(
        out,
        "dan@acme.io",
        "Dan",
        "Sales Manager",
        "ROLE_UNMAPPED: ETM role 'Sales Manager' is not in the job's role table",
    )
    preview = cli.json("preview", "Acme ETM")
    reasons = sorted(p["reason"] for r in preview["rows"] for p in r.get("problems", []))
    assert reasons == ["ROLE_UNMAPPED", "ROLE_UNMAPPED", "USER_NOT_FOUND", "USER_NOT_FOUND"]

    code, out = cli("validate", "Acme ETM")
    assert code == 0, out
    assert "rows: 10, applicable: 6" in out
    assert row(out, "ROLE_UNMAPPED", "2") and row(out, "USER_NOT_FOUND", "2")
    report = cli.json("validate", "Acme ETM")
    assert (report["rows"], report["applicable_rows"]) == ("10", "6")


def test_run_follow_shows_the_counts_then_runs_and_errors_list_it(cli):
    cli.connect()
    job = cli.make_job()
    code, out = cli("run", "Acme ETM", "--follow")
    assert code == 0, out
    run_name = found(rf"{job}/runs/[0-9a-f-]{{36}}", out)
    assert f"{run_name}: succeeded" in out
    for label, count in (("read", 10), ("assigned", 6), ("updated", 0), ("unchanged", 0), ("skipped", 4)):
        assert row(out, label, str(count)), (label, out)
    assert row(out, "skipped: ROLE_UNMAPPED", "2") and row(out, "skipped: USER_NOT_FOUND", "2")

    code, out = cli("runs", "Acme ETM")
    assert code == 0 and row(out, run_name, "full", "succeeded")
    [listed] = cli.json("runs", job)
    assert listed["counts"]["assigned"] == "6"

    code, out = cli("errors", run_name)
    assert code == 0, out
    accounts = cli.api.org.accounts
    for account in (accounts[2], accounts[5]):
        assert row(out, account, "dan@acme.io", "Sales Manager", "ROLE_UNMAPPED")
        assert row(out, account, "ghost@acme.io", "CSM", "USER_NOT_FOUND")
    errors = cli.json("errors", "Acme ETM")  # a job: its latest run
    assert sorted(e["reason"] for e in errors) == ["ROLE_UNMAPPED"] * 2 + ["USER_NOT_FOUND"] * 2
    assert len(cli.json("errors", run_name, "--limit", "3")) == 3

    # Without --follow: the run's name, at once; the run goes on.
    code, out = cli("run", job, "--mode", "incremental")
    assert code == 0 and re.fullmatch(rf"{job}/runs/[0-9a-f-]{{36}}\n", out), out
    assert finish(cli, job) == "RUN_STATE_SUCCEEDED"


def test_a_run_that_salesforce_fails_exits_1_with_the_error_code(cli):
    cli.connect()
    job = cli.make_job()
    cli.api.salesforce.fail_next("503", count=50, scope="query")
    code, out = cli("run", job, "--follow")
    assert code == 1
    assert ": failed" in out
    assert re.search(r"^SALESFORCE_\w+: ", out, re.MULTILINE), out
    [failed] = cli.json("runs", job)
    assert failed["state"] == "RUN_STATE_FAILED" and failed["error_code"].startswith("SALESFORCE_")
    cli.api.salesforce.clear_faults()
    code, out = cli("run", job, "--json")  # without --follow: the first message
    assert code == 0 and json.loads(out)["state"] == "RUN_STATE_RUNNING"
    assert finish(cli, job) == "RUN_STATE_SUCCEEDED"


def test_every_and_role_options_parse():
    assert [parse_every(t) for t in ("15m", "1h", "1h30m", "2d", "90s", "off")] == [900, 3600, 5400, 172800, 90, None]
    assert [format_every(s) for s in (900, 3600, 5400, 172800, 90)] == ["15m", "1h", "1h30m", "2d", "1m30s"]
    for bad in ("", "1x", "h", "1 hour"):
        with pytest.raises(Exception, match=r"use e\.g\."):
            parse_every(bad)
    assert parse_roles(["Account Executive=sales_manager", "CSM=roles/success_manager", "Gone="]) == {
        "Account Executive": "roles/sales_manager",
        "CSM": "roles/success_manager",
        "Gone": "",
    }


def test_runs_stay_readable_at_80_columns(cli):
    cli.connect()
    job = cli.make_job()
    code, out = cli("run", "Acme ETM", "--follow")
    assert code == 0, out
    run_name = found(rf"{job}/runs/[0-9a-f-]{{36}}", out)
    narrow = Cli({**cli.env, "COLUMNS": "80"}, cli.api)
    code, out = narrow("runs", "Acme ETM")
    assert code == 0, out
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    assert "…" not in out, out
    header = next(line.split() for line in lines if line.split()[:2] == ["run", "mode"])
    assert header == ["run", "mode", "state", "started", "read", "new", "upd", "same", "skip", "error"]
    short = run_name.rsplit("/", 1)[-1][:8]
    [cells] = [line.split() for line in lines if line.startswith(short)]
    # run, mode, state, started (date and time), read, new, updated, unchanged, skipped
    assert cells[:3] == [short, "full", "succeeded"] and cells[5:] == ["10", "6", "0", "0", "4"], out


def test_upload_sends_the_file_with_progress_and_lists_the_lines_not_applied(cli, tmp_path: Path):
    created = cli.api.jobs.CreateJob(
        jobs_pb2.CreateJobRequest(job=jobs_pb2.Job(display_name="Owners", type=jobs_pb2.JOB_TYPE_FILE_UPLOAD)),
        metadata=cli.md,
    )
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("account_id,nobody___tid\n001A,ann@acme.io\n")
    code, out = cli("upload", "Owners", str(bad_header))
    assert code == 1 and "INVALID_ARGUMENT" in out and "HEADER_INVALID" in out, out

    owners = tmp_path / "owners.csv"
    owners.write_text("account_id,success_manager___tid\n001X1,ann@acme.io\n001X2,ghost@acme.io\n001X3,bob@acme.io\n")
    code, out = cli("upload", "Owners", str(owners))
    assert code == 0, out
    assert f"sent {owners.stat().st_size} bytes of owners.csv" in out
    assert re.search(rf"{created.name}/runs/[0-9a-f-]{{36}}: succeeded", out), out
    for label, count in (("read", 3), ("assigned", 2), ("skipped", 1)):
        assert row(out, label, str(count)), (label, out)
    assert "1 line(s) not applied" in out
    assert row(out, "3", "001X2", "ghost@acme.io", "success_manager___tid", "USER_NOT_FOUND"), out
    report = cli.json("upload", "Owners", str(owners))
    assert report["run"]["state"] == "RUN_STATE_SUCCEEDED" and [e["row"] for e in report["errors"]] == ["3"]
    code, out = cli("upload", "Owners", str(owners), "--kind", "teams")
    assert code == 2 and "use assignments or users" in out
