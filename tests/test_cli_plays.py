"""`steward plays validate|diff|apply|get|list` against real users and rules servers, in process."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from services.cli.main import app
from services.runtime.auth import mint_token
from steward.rules.v1 import plays_pb2
from steward.users.v1 import assignments_pb2 as apb
from steward.users.v1 import users_pb2 as upb
from tests.conftest import JWT_SECRET
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

    def __call__(self, *args: str) -> tuple[int, str]:
        """`steward plays ARGS` in process: exit code and output (stdout and stderr). The servers
        run in this process too and log to whatever sys.stdout is: their JSON lines are dropped."""
        result = CliRunner().invoke(app, ["plays", *args], env=self.env)
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
    api = rules_api
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
