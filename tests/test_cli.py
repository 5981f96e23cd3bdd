"""`steward dev` (what `make run` runs), `steward health` and `steward token`, as processes."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from steward.users.v1 import users_pb2, users_pb2_grpc
from tests.processes import free_port, is_serving, python_module

SERVICES = ("users", "rules", "sync")


@pytest.fixture
def dev_env(tmp_path, monkeypatch):
    env = {
        "STEWARD_DATA_DIR": str(tmp_path / "var"),
        "STEWARD_JWT_SECRET": "",
        "STEWARD_SMTP_PORT": str(free_port()),
        "STEWARD_USERS_SCIM_PORT": str(free_port()),
        "STEWARD_CONSOLE_PORT": str(free_port()),
    }
    for name in SERVICES:
        port = free_port()
        env |= {
            f"STEWARD_{name.upper()}_PORT": str(port),
            f"STEWARD_{name.upper()}_ADDRESS": f"127.0.0.1:{port}",
            f"STEWARD_{name.upper()}_METRICS_PORT": str(free_port()),
        }
    return env


def _run(*args: str, env: dict[str, str]):
    process = python_module("services.cli.main", *args, env=env)
    return process.finish(), process


@pytest.mark.slow
def test_dev_runs_all_three_healthy_prints_a_working_token_and_stops_cleanly(dev_env):
    dev = python_module("services.cli.main", "dev", env=dev_env)
    try:
        dev.wait_for(lambda: any("grpcurl" in line for line in dev.stdout), seconds=90, what="the banner")
        assert any("Steward is running" in line for line in dev.stdout)
        # The web console too, with its URL; invitation emails link to it.
        console_url = next(line.split()[1] for line in dev.stdout if line.strip().startswith("console "))
        assert console_url == f"http://localhost:{dev_env['STEWARD_CONSOLE_PORT']}"
        for probe in ("healthz", "readyz"):
            with urllib.request.urlopen(f"{console_url}/{probe}", timeout=5) as reply:
                assert reply.status == 200
        token = next(line for line in dev.stdout if line.startswith("export STEWARD_TOKEN=")).split("=", 1)[1]
        code, health = _run("health", "--json", env=dev_env)
        statuses = json.loads(health.stdout[-1])
        assert code == 0, health.output()
        assert {name: s["status"] for name, s in statuses.items()} == dict.fromkeys(SERVICES, "SERVING")
        # Stored secrets are sealed even here, with a dev key kept beside the dev JWT secret.
        keys = Path(dev_env["STEWARD_DATA_DIR"]) / "dev-secrets-keys"
        assert keys.stat().st_mode & 0o777 == 0o600
        sealed = [line for line in dev.stdout if '"event": "serving"' in line and '"secrets_sealed": true' in line]
        assert {name for name in SERVICES if any(f'"service": "{name}"' in line for line in sealed)} == set(SERVICES)
        # The printed token works against the running users service...
        with grpc.insecure_channel(dev_env["STEWARD_USERS_ADDRESS"]) as channel:
            stub = users_pb2_grpc.UserServiceStub(channel)
            assert (
                stub.ListUsers(
                    users_pb2.ListUsersRequest(), metadata=[("authorization", f"Bearer {token}")]
                ).next_page_token
                == ""
            )
            # ...and so does one minted later by `steward token`, from the same dev secret.
            code, minted = _run("token", env=dev_env)
            assert code == 0
            stub.ListUsers(users_pb2.ListUsersRequest(), metadata=[("authorization", f"Bearer {minted.stdout[-1]}")])
        # The directory from the command line, as the bootstrap admin of this dev installation.
        code, invited = _run("users", "invite", "cli@example.com", "--license", "viewer", "--json", env=dev_env)
        assert code == 0, invited.output()
        assert json.loads("\n".join(invited.stdout))[0]["email"] == "cli@example.com"
        mail = Path(dev_env["STEWARD_DATA_DIR"]) / "mail"
        dev.wait_for(lambda: any(p.read_text().count("cli@example.com") for p in mail.glob("*.eml")), what="mail")
        assert any(f"{console_url}/accept-invitation?token=" in p.read_text() for p in mail.glob("*.eml"))
        code, listed = _run("users", "list", "--page-size", "1", "--json", env=dev_env)  # two pages of one
        assert code == 0
        assert [u["email"] for u in json.loads("\n".join(listed.stdout))] == ["admin@steward.local", "cli@example.com"]
        code, refused = _run("users", "invite", "not-an-email", "--license", "viewer", env=dev_env)
        assert code == 1 and any("EMAIL_INVALID" in line for line in refused.stderr)
        assert not any("Traceback" in line for line in refused.stderr)
        code, teams = _run("teams", "create", "CLI team", "--json", env=dev_env)
        assert code == 0 and json.loads("\n".join(teams.stdout))["display_name"] == "CLI team"
        # The banner's SCIM base URL answers an identity provider's token from `steward token`.
        scim_url = next(line.split()[1] for line in dev.stdout if line.strip().startswith("scim "))
        assert scim_url == f"http://127.0.0.1:{dev_env['STEWARD_USERS_SCIM_PORT']}/scim/v2"
        code, idp = _run("token", "--sub", "service:okta", "--scope", "users.scim", env=dev_env)
        request = urllib.request.Request(
            f"{scim_url}/Users?filter=userName%20eq%20%22cli@example.com%22",
            headers={"Authorization": f"Bearer {idp.stdout[-1]}"},
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert [u["userName"] for u in json.loads(reply.read())["Resources"]] == ["cli@example.com"]
        # Account assignment and the event stream.
        code, assigned = _run("assign", "ACC-1", "success_manager", "admin@steward.local", "--json", env=dev_env)
        assert code == 0, assigned.output()
        holder = json.loads("\n".join(assigned.stdout))["user"]
        code, team = _run("team", "ACC-1", "--json", env=dev_env)
        assert [(a["role"], a["user"]) for a in json.loads("\n".join(team.stdout))] == [
            ("roles/success_manager", holder)
        ]
        code, mine = _run("assignments", "--user", holder, "--json", env=dev_env)
        assert [a["account_id"] for a in json.loads("\n".join(mine.stdout))] == ["ACC-1"]
        cli_user = json.loads("\n".join(invited.stdout))[0]["name"]
        code, plan = _run("users", "reassign", holder, "--accounts-to", cli_user, "--dry-run", "--json", env=dev_env)
        assert code == 0, plan.output()
        summary = json.loads("\n".join(plan.stdout))
        assert summary["dry_run"] and summary["assignments"]["ids"] == ["ACC-1/roles/success_manager"]
        code, events = _run("events", "watch", "--type", "assignment.set", "--limit", "1", "--json", env=dev_env)
        assert code == 0 and json.loads(events.stdout[0])["data"]["account_id"] == "ACC-1"
        dev.popen.send_signal(signal.SIGINT)
        assert dev.popen.wait(timeout=60) == 0, dev.output()
        dev.wait_for(lambda: any("all services stopped" in line for line in dev.stderr), what="stop message")
    finally:
        dev.close()
    # Nothing left listening once dev has exited.
    code, after = _run("health", "--json", env=dev_env)
    assert code == 1
    assert all(s["status"].startswith("UNREACHABLE") for s in json.loads(after.stdout[-1]).values())


@pytest.mark.slow
def test_token_without_any_secret_explains_what_to_do(tmp_path):
    code, process = _run("token", env={"STEWARD_DATA_DIR": str(tmp_path), "STEWARD_JWT_SECRET": ""})
    assert code == 2
    assert any("STEWARD_JWT_SECRET" in line for line in process.stdout + process.stderr)


@pytest.mark.slow
def test_services_stop_when_the_dev_runner_is_killed_outright(dev_env):
    dev = python_module("services.cli.main", "dev", env=dev_env)
    try:
        dev.wait_for(lambda: any("grpcurl" in line for line in dev.stdout), seconds=90, what="the banner")
        os.kill(dev.popen.pid, signal.SIGKILL)  # no chance to clean up: the children must notice on their own
        dev.popen.wait(timeout=10)
        addresses = [dev_env[f"STEWARD_{n.upper()}_ADDRESS"] for n in SERVICES]
        deadline = time.monotonic() + 30
        while any(is_serving(a) for a in addresses) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(is_serving(a) for a in addresses)
    finally:
        dev.close()
