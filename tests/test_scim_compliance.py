"""The outside SCIM compliance suite (scim2-tester, through scim2-cli's `scim2 test`) against the
live endpoint of a real users service, on each database: every check must succeed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from services.users.config import UsersConfig
from tests.scim_kit import scim_config, scim_of, scim_token

SCIM2 = str(Path(sys.executable).with_name("scim2"))
STATUS = re.compile(r"^(SUCCESS|ERROR|CRITICAL|SKIPPED|WARNING|INFO|DEBUG) (\w+)")


def run_suite(base_url: str, token: str) -> tuple[int, list[tuple[str, str]], str]:
    """The exit code, each check's (status, name), and what the suite printed."""
    env = os.environ | {"SCIM_CLI_HEADERS": f"Authorization: Bearer {token}"}
    done = subprocess.run([SCIM2, "--url", base_url, "test"], env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    results = [(m[1], m[2]) for line in output.splitlines() if (m := STATUS.match(line))]
    return done.returncode, results, output


def test_every_check_of_the_compliance_suite_succeeds(users_api):
    # An SSO organisation (users start ACTIVE) in UUID mode, where emails may change: the suite
    # replaces emails and flips `active` at random, which those settings allow.
    api = users_api(scim_config(UsersConfig(uuid_mode=True)))
    scim = scim_of(api)
    code, results, output = run_suite(scim.base_url, scim.token)
    failed = [r for r in results if r[0] != "SUCCESS"]
    assert code == 0 and results and not failed, output
    checks = {name for _, name in results}
    assert (
        len(results) >= 70
        and {
            "object_creation",
            "object_replacement",
            "object_deletion",
            "check_add_attribute",
            "check_remove_attribute",
            "check_replace_attribute",
            "search_with_attributes",
        }
        <= checks
    )


def test_the_suite_reports_failures_it_sees(users_api):
    """The harness can fail: outside UUID mode, the suite's email replacements are refused
    (emails are the login), and a token without the users.scim scope is refused outright."""
    api = users_api(scim_config())
    scim = scim_of(api)
    code, results, output = run_suite(scim.base_url, scim.token)
    assert ("ERROR", "check_replace_attribute") in results, output
    code, results, output = run_suite(scim.base_url, scim_token(scopes=("users.read",)))
    assert code != 0 and "lacks the users.scim scope" in output
