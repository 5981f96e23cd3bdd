"""A console that also reaches a real rules service: users (with its SMTP sink), rules pointed at
that users service, and a console configured with both addresses (tests/console_kit.py's `stack`
starts users only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from services.console.config import ConsoleConfig, SmtpOut
from services.console.server import ConsoleServer
from services.users.config import UsersConfig
from tests.conftest import JWT_SECRET, RulesApi
from tests.console_kit import ADMIN, Clock, Stack
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
    config = ConsoleConfig(
        host="127.0.0.1",
        port=0,
        public_url="http://localhost:8080",
        users_address=users.running.address,
        rules_address=rules.address,
        jwt_secret=JWT_SECRET,
        smtp=SmtpOut(host="127.0.0.1", port=smtp.port),
        grace_seconds=2.0,
    )
    server = ConsoleServer(config, clock)
    server.start()
    try:
        yield RulesStack(users, server, smtp, clock, rules=rules)
    finally:
        server.stop(timeout=2)
