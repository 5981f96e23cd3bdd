"""`steward plays validate|diff|apply|get|list|runs|run` and `steward accounts state` against real
users and rules servers, in process."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from services.cli.main import app
from services.runtime.auth import mint_token
from steward.rules.v1 import events_pb2, plays_pb2
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2 as upb
from tests.conftest import JWT_SECRET, RulesApi, bearer
from tests.plays_kit import account_event, publish
from tests.seed import add_user

ONBOARDING = """\
name: Enterprise onboarding
description: Give new enterprise accounts a CSM
owner: author@example.com
origin_team: {team}
status: active
trigger:
  event: account_created
  criteria:
    all:
    - field: segment
      op: equals
      value: Enterprise
    - field: arr
      op: greater_than
      value: 10000
actions:
- update_value:
    role: success_manager
    user: bob@example.com
- update_value:
    role: sales_manager
    round_robin:
      users:
      - bob@example.com
      - carol@example.com
- update_value:
    role: renewal_manager
    holder_of_role: success_manager
- create_task:
    title: Kick-off call
    holder_of_role: success_manager
    due_in_days: 3
"""
# Two plays in one file; the second leaves owner and status to the server (the caller; draft).
RENEWALS = """\
name: Renewal signed
owner: users/{carol}
status: paused
trigger:
  custom: renewal.signed
actions:
- create_task:
    title: Thank the customer
    user: carol@example.com
---
name: Segment changes
trigger:
  event: attribute_changed
  criteria: {{field: segment, op: changed, from: SMB, to: Enterprise}}
actions:
- create_task: {{title: Review the account team, holder_of_role: roles/success_manager}}
"""


@dataclass
class Cli:
    env: dict[str, str]
    api: Any
    author: Any
    carol: Any
    team: str

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """`steward plays ARGS`: exit code and output."""
        return self.steward("plays", *args, env=env)

    def steward(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
        """`steward ARGS` in process: exit code and output (stdout and stderr). The servers
        run in this process too and log to whatever sys.stdout is: their JSON lines are dropped."""
        result = CliRunner().invoke(app, list(args), env={**self.env, **(env or {})})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        lines = [line for line in result.output.splitlines(keepends=True) if not line.startswith('{"service": ')]
        return result.exit_code, "".join(lines)

    def plays(self) -> dict[str, plays_pb2.Play]:
        reply = self.api.plays.ListPlays(plays_pb2.ListPlaysRequest(page_size=100), metadata=self.md)
        return {p.display_name: p for p in reply.plays}

    @property
    def md(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.env['STEWARD_TOKEN']}")]


@pytest.fixture
def cli(rules_api) -> Cli:
    return make_cli(rules_api)


def make_cli(api: RulesApi) -> Cli:
    users = api.users
    # The author is a global admin of the directory: may write plays, owns those that name no owner.
    author = add_user(users.db, "author@example.com", global_admin=True)
    bob = add_user(users.db, "bob@example.com")
    carol = add_user(users.db, "Carol@Example.com")
    token = mint_token(JWT_SECRET, author.id, roles=["admin"])
    md = [("authorization", f"Bearer {token}")]
    team = users.teams.CreateTeam(upb.CreateTeamRequest(team=upb.Team(display_name="Customer Success")), metadata=md)
    for member in (bob, carol):
        users.teams.AddTeamMember(upb.AddTeamMemberRequest(team=team.name, user=f"users/{member.id}"), metadata=md)
    users.assignments.CreateRole(
        apb.CreateRoleRequest(role=apb.Role(key="renewal_manager", display_name="Renewal Manager")), metadata=md
    )
    env = {
        "STEWARD_RULES_ADDRESS": api.address,
        "STEWARD_USERS_ADDRESS": api.users_address,
        "STEWARD_TOKEN": token,
        "COLUMNS": "200",
    }
    return Cli(env, api, author, carol, team.name)


def write_plays(cli: Cli, folder: Path) -> Path:
    folder.mkdir()
    (folder / "onboarding.yaml").write_text(ONBOARDING.format(team=cli.team))
    (folder / "renewals.yml").write_text(RENEWALS.format(carol=cli.carol.id))
    (folder / "README.md").write_text("not a play")
    return folder


def test_apply_creates_then_reports_unchanged_and_diff_is_clean(cli, tmp_path):
    folder = write_plays(cli, tmp_path / "plays")
    code, out = cli("validate", "-f", str(folder))
    assert (code, out.strip()) == (0, "3 play(s) valid")

    code, out = cli("diff", "-f", str(folder))
    assert code == 1
    assert "--- (new)" in out and "+name: Enterprise onboarding" in out and "+  custom: renewal.signed" in out

    code, out = cli("apply", "-f", str(folder))
    assert code == 0, out
    lines = out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Enterprise onboarding", "Renewal signed", "Segment changes"]
    assert all(": created (plays/" in line and "version 1)" in line for line in lines)

    saved = cli.plays()
    assert set(saved) == {"Enterprise onboarding", "Renewal signed", "Segment changes"}
    onboarding = saved["Enterprise onboarding"]
    assert onboarding.owner == f"users/{cli.author.id}" and onboarding.status == plays_pb2.PLAY_STATUS_ACTIVE
    assert onboarding.actions[0].update_value.role == "roles/success_manager"
    assert onboarding.trigger.criteria["all"][1]["value"] == 10000
    assert saved["Renewal signed"].owner == f"users/{cli.carol.id}"
    assert saved["Segment changes"].owner == f"users/{cli.author.id}"  # the caller, by default

    code, out = cli("apply", "-f", str(folder))
    assert code == 0, out
    assert out.splitlines() == [
        "Enterprise onboarding: unchanged (version 1)",
        "Renewal signed: unchanged (version 1)",
        "Segment changes: unchanged (version 1)",
    ]
    code, out = cli("diff", "-f", str(folder))
    assert (code, out) == (0, "")

    # The file form as the server has it: what was written (owner and users as emails).
    code, out = cli("get", "Enterprise onboarding")
    assert code == 0 and yaml.safe_load(out) == yaml.safe_load(ONBOARDING.format(team=cli.team))
    code, out = cli("get", "Renewal signed")
    assert code == 0 and yaml.safe_load(out)["owner"] == "carol@example.com"
    code, out = cli("list")
    assert code == 0 and "Enterprise onboarding" in out and "custom: renewal.signed" in out


def test_an_edited_file_shows_in_diff_and_apply_updates_it(cli, tmp_path):
    folder = write_plays(cli, tmp_path / "plays")
    assert cli("apply", "-f", str(folder))[0] == 0
    before = cli.plays()["Enterprise onboarding"]

    onboarding = folder / "onboarding.yaml"
    onboarding.write_text(
        onboarding.read_text().replace("value: 10000", "value: 25000").replace("due_in_days: 3", "due_in_days: 5")
    )
    code, out = cli("diff", "-f", str(folder))
    assert code == 1
    changed = [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert changed == ["-      value: 10000", "+      value: 25000", "-    due_in_days: 3", "+    due_in_days: 5"]
    assert f"--- {before.name} (version 1)" in out and f"+++ {onboarding}: Enterprise onboarding" in out

    code, out = cli("apply", "-f", str(folder))
    assert code == 0, out
    assert out.splitlines() == [
        "Enterprise onboarding: updated (version 2)",
        "Renewal signed: unchanged (version 1)",
        "Segment changes: unchanged (version 1)",
    ]
    after = cli.plays()["Enterprise onboarding"]
    assert (after.name, after.version) == (before.name, 2)
    assert after.trigger.criteria["all"][1]["value"] == 25000 and after.actions[3].create_task.due_in_days == 5
    assert cli("diff", "-f", str(folder)) == (0, "")

    # A play with no owner or status in its file keeps the saved ones when changed.
    renewals = folder / "renewals.yml"
    renewals.write_text(renewals.read_text().replace("Review the account team", "Review the team"))
    code, out = cli("apply", "-f", str(renewals))
    assert (code, out.splitlines()) == (
        0,
        ["Renewal signed: unchanged (version 1)", "Segment changes: updated (version 2)"],
    )
    assert cli.plays()["Segment changes"].owner == f"users/{cli.author.id}"
    assert cli("diff", "-f", str(folder)) == (0, "")


def test_a_directory_with_an_invalid_play_applies_nothing_and_lists_every_problem(cli, tmp_path):
    folder = write_plays(cli, tmp_path / "plays")
    (folder / "zz-broken.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: Broken
            owner: author@example.com
            origin_team: {cli.team}
            status: draft
            trigger:
              event: account_updated
              criteria:
                all:
                - {{field: arr, op: bigger_than, value: 5}}
            actions:
            - create_task: {{title: Look, user: bob@example.com}}
            - update_value: {{role: chief_of_fun, user: bob@example.com}}
            """
        )
    )
    (folder / "zz-typo.json").write_text(
        '{"name": "Typo", "stauts": "active", "trigger": {"event": "account_created"}}'
    )

    code, out = cli("apply", "-f", str(folder))
    assert code == 1
    broken = str(folder / "zz-broken.yaml")
    assert f"{broken}: Broken: trigger.criteria.all[0].op: " in out and "[OPERATOR_UNKNOWN]" in out
    assert f"{broken}: Broken: actions[1].update_value.role: " in out and "[ROLE_UNKNOWN]" in out
    assert f"{folder / 'zz-typo.json'}: Typo: stauts: unknown key" in out
    assert "3 problem(s) in 5 play(s); nothing applied" in out
    assert "Traceback" not in out
    assert cli.plays() == {}

    code, out = cli("validate", "-f", str(folder))
    assert code == 1 and "[OPERATOR_UNKNOWN]" in out and "[ROLE_UNKNOWN]" in out and "[UNKNOWN_KEY]" in out
    code, out = cli("validate", "-f", str(folder / "onboarding.yaml"))
    assert (code, out.strip()) == (0, "1 play(s) valid")


def test_names_used_twice_and_unknown_owners_are_problems(cli, tmp_path):
    folder = write_plays(cli, tmp_path / "plays")
    (folder / "copy.yaml").write_text(ONBOARDING.format(team=cli.team).replace("author@", "nobody@"))
    code, out = cli("apply", "-f", str(folder))
    assert code == 1
    assert f"{folder / 'copy.yaml'}: Enterprise onboarding: owner: no user has the email nobody@example.com" in out
    assert f"{folder / 'onboarding.yaml'}: Enterprise onboarding: name: another play has this name too" in out
    assert cli.plays() == {}
    code, out = cli("diff", "-f", str(folder))
    assert code == 2 and "[NAME_DUPLICATE]" in out


# Plays on account state: their criteria may name only attributes some account event carried.
SEGMENT = """\
name: Renewal coming up
owner: author@example.com
status: active
trigger:
  kind: enters_segment
  activation: existing_and_new
  criteria:
    all:
    - field: segment
      op: equals
      value: Enterprise
    - field: renewal_date
      op: within_next_days
      value: 90
actions:
- create_task:
    title: Plan the renewal
    user: carol@example.com
    due_in_days: 7
"""
MANUAL = """\
name: Escalate
owner: author@example.com
status: active
trigger:
  kind: manual
actions:
- create_task:
    title: Tell the parent account
    holder_of_role: success_manager
    on_parent_account: true
"""
WEBHOOK = """\
name: Notify the CRM
owner: author@example.com
status: active
webhook_secret_env: {env}
trigger:
  event: account_created
actions:
- call_webhook:
    url: https://hooks.example.com/steward
    timeout_seconds: 5
"""
LOOP = """\
name: Give enterprise accounts a CSM
owner: author@example.com
origin_team: {team}
status: draft
trigger:
  kind: enters_segment
  criteria:
    all:
    - {{field: segment, op: equals, value: Enterprise}}
    - not: {{field: success_manager___tid, op: exists}}
actions:
- update_value: {{role: success_manager, user: bob@example.com}}
"""
HOOK_ENV = "STEWARD_TEST_PLAYS_HOOK_SECRET"  # set only through Cli(env=...)
HOOK_SECRET = "0123456789abcdef" * 3


def seed_attributes(cli: Cli, account: str = "seed", **attributes: Any) -> None:
    """An ATTRIBUTE_CHANGED event, so that segment criteria may name these attributes (published
    by an operator: the author, a user, may not publish)."""
    event = account_event(account, attributes, event_type=events_pb2.EVENT_TYPE_ATTRIBUTE_CHANGED)
    publish(cli.api, bearer(), event)


def write(folder: Path, **files: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def eventually(check: Any, what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)
    return found


def test_segment_and_manual_plays_round_trip_through_apply_and_diff(cli, tmp_path):
    seed_attributes(cli, segment="SMB", renewal_date="2026-12-01")
    folder = write(tmp_path / "plays", segment=SEGMENT, manual=MANUAL)
    assert cli("validate", "-f", str(folder)) == (0, "2 play(s) valid\n")

    code, out = cli("apply", "-f", str(folder))
    assert code == 0, out
    assert [line.split(":")[0] for line in out.splitlines()] == ["Escalate", "Renewal coming up"]
    saved = cli.plays()
    segment, manual = saved["Renewal coming up"], saved["Escalate"]
    assert segment.trigger.kind == plays_pb2.TRIGGER_KIND_ENTERS_SEGMENT
    assert segment.trigger.activation == plays_pb2.ACTIVATION_SCOPE_EXISTING_AND_NEW
    assert manual.trigger.kind == plays_pb2.TRIGGER_KIND_MANUAL and not manual.trigger.HasField("criteria")
    assert manual.actions[0].create_task.on_parent_account

    # The time-based segment (renewal within 90 days) schedules the clock's next look at an account.
    renewal = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=200)
    seed_attributes(cli, "acct-renews", renewal_date=renewal.isoformat())
    code, out = cli.steward("accounts", "state", "acct-renews")
    assert code == 0 and f"next time check: {renewal - dt.timedelta(days=90)}T00:00:00.001Z" in out.splitlines()

    assert cli("diff", "-f", str(folder)) == (0, "")
    code, out = cli("apply", "-f", str(folder))
    assert (code, out.splitlines()) == (
        0,
        ["Escalate: unchanged (version 1)", "Renewal coming up: unchanged (version 1)"],
    )
    for name, text in (("Renewal coming up", SEGMENT), ("Escalate", MANUAL)):
        code, out = cli("get", name)
        assert code == 0 and yaml.safe_load(out) == yaml.safe_load(text)
    code, out = cli("list")
    assert code == 0 and "enters_segment" in out and "manual" in out

    # A segment play that leaves activation to the default still diffs clean (the server
    # answers new_only for it).
    default = SEGMENT.replace("  activation: existing_and_new\n", "")
    (folder / "segment.yaml").write_text(default)
    code, out = cli("diff", "-f", str(folder))
    assert code == 1 and [line for line in out.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")] == [
        "-  activation: existing_and_new"
    ]
    assert cli("apply", "-f", str(folder))[0] == 0
    assert cli.plays()["Renewal coming up"].trigger.activation == plays_pb2.ACTIVATION_SCOPE_NEW_ONLY
    assert cli("diff", "-f", str(folder)) == (0, "")


def test_the_webhook_secret_comes_from_the_variable_the_file_names_and_is_never_compared(cli, tmp_path):
    folder = write(tmp_path / "plays", hook=WEBHOOK.format(env=HOOK_ENV))
    hook = folder / "hook.yaml"
    problem = f"{hook}: Notify the CRM: webhook_secret_env: the environment variable {HOOK_ENV} is not set"
    for command in ("validate", "apply", "diff"):
        code, out = cli(command, "-f", str(folder))
        assert code in (1, 2) and problem in out and "[ENV_MISSING]" in out, (command, out)
    assert cli.plays() == {}

    # No webhook_secret_env at all: the server's problem, in file terms.
    hook.write_text(WEBHOOK.format(env=HOOK_ENV).replace(f"webhook_secret_env: {HOOK_ENV}\n", ""))
    code, out = cli("validate", "-f", str(folder))
    assert code == 1 and f"{hook}: Notify the CRM: webhook_secret_env: " in out and "[WEBHOOK_SECRET_REQUIRED]" in out
    hook.write_text(WEBHOOK.format(env=HOOK_ENV))
    code, out = cli("validate", "-f", str(folder), env={HOOK_ENV: "too short"})
    assert code == 1 and "webhook_secret_env: " in out and "too short" not in out

    secret = {HOOK_ENV: HOOK_SECRET}
    assert cli("validate", "-f", str(folder), env=secret) == (0, "1 play(s) valid\n")
    code, out = cli("apply", "-f", str(folder), env=secret)
    assert code == 0 and "Notify the CRM: created" in out, out
    saved = cli.plays()["Notify the CRM"]
    assert saved.has_webhook_secret and not saved.webhook_secret
    assert saved.actions[0].call_webhook.timeout_seconds == 5
    assert cli("diff", "-f", str(folder), env=secret) == (0, "")
    assert cli("diff", "-f", str(folder), env={HOOK_ENV: "another secret, just as long as the first"}) == (0, "")
    code, out = cli("apply", "-f", str(folder), env=secret)
    assert (code, out) == (0, "Notify the CRM: unchanged (version 1)\n")

    code, out = cli("get", "Notify the CRM")
    assert code == 0 and HOOK_SECRET not in out and "# has a webhook secret: add `webhook_secret_env" in out
    assert yaml.safe_load(out) == {
        k: v for k, v in yaml.safe_load(WEBHOOK.format(env=HOOK_ENV)).items() if k != "webhook_secret_env"
    }


def test_validate_and_apply_show_the_servers_warnings_without_failing(cli, tmp_path):
    seed_attributes(cli, segment="SMB")
    folder = write(tmp_path / "plays", loop=LOOP.format(team=cli.team), manual=MANUAL)
    warning = f"warning: {folder / 'loop.yaml'}: Give enterprise accounts a CSM: actions[0]: this action sets "
    code, out = cli("validate", "-f", str(folder))
    assert code == 0, out
    assert warning in out and "[PLAY_MAY_LOOP]" in out
    assert out.splitlines()[-1] == "2 play(s) valid (1 warning(s))"

    code, out = cli("apply", "-f", str(folder))
    assert code == 0 and warning in out and "Give enterprise accounts a CSM: created" in out, out
    # Updating it warns again (UpdatePlay's validation answers the warnings too).
    (folder / "loop.yaml").write_text(LOOP.format(team=cli.team).replace("status: draft", "status: paused"))
    code, out = cli("apply", "-f", str(folder))
    assert code == 0 and warning in out and "Give enterprise accounts a CSM: updated (version 2)" in out, out


def run_name(out: str) -> str:
    [line] = [line for line in out.splitlines() if "/runs/" in line]
    return line.split(":")[0]


def test_run_starts_a_manual_play_for_an_account_and_refuses_other_plays(cli, tmp_path):
    folder = write(tmp_path / "plays", manual=MANUAL, onboarding=ONBOARDING.format(team=cli.team))
    assert cli("apply", "-f", str(folder))[0] == 0
    escalate = cli.plays()["Escalate"]

    code, out = cli("run", "Escalate", "--account", "acct-1")
    assert code == 0, out
    assert "request id: " in out and "(to retry this run: --request-id " in out
    first = run_name(out)
    assert first.startswith(f"{escalate.name}/runs/")
    assert any(f"{first}: {outcome}" in out for outcome in ("pending", "applied", "skipped", "failed"))
    code, out = cli("runs", "--play", "Escalate")
    assert code == 0 and "acct-1" in out and escalate.name in out

    # The same request id: the same run, whether the play is named by display name or plays/{uid}.
    code, out = cli("run", escalate.name, "--account", "acct-2", "--request-id", "5f0e4a8e-1b7c-4d7e-9e51-0c1f2a3b4c5d")
    assert code == 0 and "request id:" not in out, out
    again = cli("run", "Escalate", "--account", "acct-2", "--request-id", "5f0e4a8e-1b7c-4d7e-9e51-0c1f2a3b4c5d")
    assert again[0] == 0 and run_name(again[1]) == run_name(out) != first
    code, out = cli("runs", "--play", escalate.name, "--json")
    assert code == 0 and sorted(r["account_id"] for r in yaml.safe_load(out)) == ["acct-1", "acct-2"]

    code, out = cli("run", "Enterprise onboarding", "--account", "acct-1")
    assert code == 1 and "FAILED_PRECONDITION" in out and "reason: PLAY_NOT_MANUAL" in out, out
    code, out = cli("run", "Nothing like it", "--account", "acct-1")
    assert code == 1 and "no play is named 'Nothing like it'" in out


def test_run_beyond_the_rate_limit_says_when_to_retry(rules_stack, tmp_path):
    now = dt.datetime(2026, 1, 1, 9, 30, 20, tzinfo=dt.UTC)  # 40 s before the next minute's window
    cli = make_cli(rules_stack(manual_runs_per_minute=1, clock=lambda: now))
    assert cli("apply", "-f", str(write(tmp_path / "plays", manual=MANUAL)))[0] == 0
    assert cli("run", "Escalate", "--account", "acct-1")[0] == 0
    code, out = cli("run", "Escalate", "--account", "acct-2", "--request-id", "0b6c1f34-5d1e-4f7a-8a2b-9c3d4e5f6a7b")
    assert code == 1, out
    assert "RESOURCE_EXHAUSTED" in out and "reason: RATE_LIMITED" in out
    assert "retry in 40 s with --request-id 0b6c1f34-5d1e-4f7a-8a2b-9c3d4e5f6a7b" in out
    assert "Traceback" not in out


def test_accounts_state_shows_attributes_parent_and_segments(cli, tmp_path):
    seed_attributes(cli, segment="SMB", renewal_date="2026-12-01")
    enterprise = SEGMENT.replace("Renewal coming up", "Enterprise accounts").replace(
        "    - field: renewal_date\n      op: within_next_days\n      value: 90\n", ""
    )
    assert cli("apply", "-f", str(write(tmp_path / "plays", segment=enterprise)))[0] == 0
    play = cli.plays()["Enterprise accounts"]
    seed_attributes(cli, "acct-7", segment="Enterprise", arr=12000, parent_account_id="parent-1")

    def shown() -> str:
        code, out = cli.steward("accounts", "state", "acct-7")
        assert code == 0, out
        return out if play.name in out else ""

    out = eventually(shown, "acct-7 is in the segment")
    lines = out.splitlines()
    assert "account: acct-7" in lines and "parent: parent-1" in lines
    assert any("segment" in line and "Enterprise" in line for line in lines)
    assert any("arr" in line and "12000" in line and "12000.0" not in line for line in lines)
    assert any("Enterprise accounts" in line and play.name in line for line in lines)

    code, out = cli.steward("accounts", "state", "acct-7", "--json")
    assert code == 0
    state = yaml.safe_load(out)
    assert state["segments"] == [play.name] and state["parent_account_id"] == "parent-1"
    assert state["attributes"]["segment"] == "Enterprise"

    code, out = cli.steward("accounts", "state", "seed")
    assert code == 0 and "segments: (none)" in out and "parent: (none)" in out
    code, out = cli.steward("accounts", "state", "nobody")
    assert code == 1 and "NOT_FOUND" in out and "reason: ACCOUNT_NOT_FOUND" in out


COMPETING = """\
name: {name}
owner: author@example.com
origin_team: {team}
status: active
{priority}trigger:
  event: account_created
actions:
- update_value: {{role: success_manager, user: {user}}}
"""


def test_priority_lives_in_play_files_and_equal_priorities_warn(cli, tmp_path):
    folder = write(
        tmp_path / "plays",
        bob=COMPETING.format(name="Bob first", team=cli.team, priority="", user="bob@example.com"),
        carol=COMPETING.format(name="Carol too", team=cli.team, priority="", user="carol@example.com"),
    )
    code, out = cli("apply", "-f", str(folder))
    assert code == 0, out
    # Both are active now, with the same priority: validating either finds the other.
    code, out = cli("validate", "-f", str(folder))
    assert code == 0 and out.count("[PLAYS_COMPETE]") == 2, out
    assert "Carol too: priority: " in out and out.splitlines()[-1] == "2 play(s) valid (2 warning(s))", out

    (folder / "carol.yaml").write_text(
        COMPETING.format(name="Carol too", team=cli.team, priority="priority: 5\n", user="carol@example.com")
    )
    # Each file is validated against the plays as saved: Bob's still meets Carol's at priority 0.
    code, out = cli("validate", "-f", str(folder))
    assert (code, out.splitlines()[-1]) == (0, "2 play(s) valid (1 warning(s))"), out
    code, out = cli("apply", "-f", str(folder))
    assert code == 0 and "Carol too: updated (version 2)" in out, out
    assert cli("validate", "-f", str(folder)) == (0, "2 play(s) valid\n")
    code, out = cli("get", "Carol too")
    assert code == 0 and yaml.safe_load(out)["priority"] == 5
    assert cli("diff", "-f", str(folder)) == (0, "")


# Actions the file form can hold but the server refuses: the CLI has no validator of its own.
REFUSED_ACTIONS = """\
name: Refused actions
owner: author@example.com
origin_team: {team}
webhook_secret_env: {env}
trigger:
  event: account_created
actions:
- update_value: {{user: bob@example.com}}
- update_value:
    role: success_manager
    round_robin: {{users: [bob@example.com], team: {team}}}
- create_task: {{title: Late, user: bob@example.com, due_in_days: 99999}}
- call_webhook: {{timeout_seconds: 5}}
- {{}}
"""


def test_the_server_judges_every_action_and_the_cli_shows_its_violations_in_file_terms(cli, tmp_path):
    folder = write(tmp_path / "plays", refused=REFUSED_ACTIONS.format(team=cli.team, env=HOOK_ENV))
    where = f"{folder / 'refused.yaml'}: Refused actions: "
    for command in ("validate", "apply"):
        code, out = cli(command, "-f", str(folder), env={HOOK_ENV: HOOK_SECRET})
        assert code == 1, out
        for path, reason in [
            ("actions[0].update_value.role", "ROLE_INVALID"),
            ("actions[1].update_value.round_robin", "ROUND_ROBIN_INVALID"),
            ("actions[2].create_task.due_in_days", "DUE_INVALID"),
            ("actions[3].call_webhook.url", "URL_INVALID"),
            ("actions[4]", "ACTION_INVALID"),
        ]:
            assert f"{where}{path}: " in out and f"[{reason}]" in out, (command, path, out)
        assert "5 problem(s) in 1 play(s)" in out
    assert cli.plays() == {}


def test_test_runs_the_files_play_against_a_sample_event_and_records_nothing(cli, tmp_path):
    play = tmp_path / "onboarding.yaml"
    play.write_text(ONBOARDING.format(team=cli.team))
    enterprise = (
        '{"account_id": "acct-7", "type": "account_created", "attributes": {"segment": "Enterprise", "arr": 50000}}'
    )
    code, out = cli("test", str(play), "--event", enterprise)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "matched: Enterprise onboarding"
    assert len(lines) == 5 and lines[1].startswith("  1. ") and "success_manager" in lines[1]
    assert "Kick-off call" in lines[4]

    # Too small: no match. From a file (@FILE), as JSON too.
    small = tmp_path / "small.json"
    small.write_text('{"account_id": "acct-7", "type": "account_created", "attributes": {"segment": "SMB"}}')
    code, out = cli("test", str(play), "--event", f"@{small}")
    assert (code, out.strip()) == (0, "not matched: the play would not run for this event")
    code, out = cli("test", str(play), "--event", f"@{small}", "--json")
    assert code == 0 and json.loads(out)["results"][0].get("matches") is None

    # An unsaved play is judged whole by the server; nothing is created, no event recorded.
    assert cli.plays() == {}
    code, out = cli("test", str(play), "--event", '{"account_id": "acct-7", "type": "acount_created", "segment": "x"}')
    assert code == 1
    assert "--event: type: unknown event type" in out and "--event: segment: unknown key" in out
    play.write_text(ONBOARDING.format(team=cli.team).replace("role: success_manager", "role: chief_of_fun"))
    code, out = cli("test", str(play), "--event", enterprise)
    assert code == 1 and f"{play}: Enterprise onboarding: actions[0].update_value.role: " in out
    assert "[ROLE_UNKNOWN]" in out and "Traceback" not in out
    code, out = cli("test", str(tmp_path / "missing.yaml"), "--event", enterprise)
    assert code == 1 and "no such file or directory" in out
