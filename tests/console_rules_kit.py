"""A console that also reaches a real rules service: users (with its SMTP sink), rules pointed at
that users service, and a console configured with both addresses (tests/console_kit.py's `stack`
starts users only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services.console.server import ConsoleServer
from services.users.config import UsersConfig
from tests.conftest import RulesApi
from tests.console_kit import ADMIN, Clock, Stack, console_config
from tests.smtp_sink import SmtpSink


@dataclass
class RulesStack(Stack):
    rules: Any = None

    @property
    def api(self) -> RulesApi:
        found: RulesApi = self.rules
        return found


@contextmanager
def rules_console_running(users_api: Any, rules_stack: Any, smtp: SmtpSink) -> Iterator[RulesStack]:
    """With conftest's users_api, rules_stack and smtp fixtures (a test module's fixture wraps it)."""
    users = users_api(UsersConfig(bootstrap_admin_email=ADMIN))
    rules: RulesApi = rules_stack(users)
    clock = Clock()
    config = console_config(users.running.address, smtp.port, rules_address=rules.address)
    server = ConsoleServer(config, clock)
    server.start()
    try:
        yield RulesStack(users, server, smtp, clock, rules=rules)
    finally:
        server.stop(timeout=2)
