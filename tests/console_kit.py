"""What the console tests share: a headless Debian chromium driven by Playwright (one per module),
a real users service with a real SMTP sink, a real console on a loopback port, and a clock the
test can move (session expiry without waiting)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from services.console.config import ConsoleConfig, SmtpOut
from services.console.server import ConsoleServer
from services.users.config import UsersConfig
from services.users.service_layer.bootstrap import bootstrap_admin_id
from tests.conftest import JWT_SECRET, bearer
from tests.smtp_sink import SmtpSink

CHROMIUM = os.environ.get("STEWARD_TEST_CHROMIUM", "/usr/bin/chromium")
ADMIN = "admin@example.com"


@dataclass
class Clock:
    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Stack:
    users: Any
    console: ConsoleServer
    smtp: SmtpSink
    clock: Clock
    sent: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.console.url

    def admin_meta(self) -> list[tuple[str, str]]:
        return bearer(bootstrap_admin_id(ADMIN), roles=())

    def link_in_next_mail(self, address: str, what: str = "token=") -> str:
        """The URL of the next email to `address` (waits for it), made to point at this console."""
        count = self.sent.get(address, 0) + 1
        message = self.smtp.wait_for(address, count)[count - 1]
        self.sent[address] = count
        body = message.get_content()
        found = re.search(r"https?://\S+", body)
        assert found and what in found.group(0), body
        parts = urlsplit(found.group(0))
        return f"{self.url}{parts.path}?{parts.query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


def console_config(users_address: str, smtp_port: int, **settings: Any) -> ConsoleConfig:
    """A console on a free loopback port, its sign-in links to the test's SMTP sink; `settings`
    add the other services' addresses, OIDC and the like."""
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "public_url": "http://localhost:8080",
        "jwt_secret": JWT_SECRET,
        "grace_seconds": 2.0,
    }
    return ConsoleConfig(
        users_address=users_address, smtp=SmtpOut(host="127.0.0.1", port=smtp_port), **(defaults | settings)
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:  # `make test` installs it (the Makefile's chromium target)
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def stack(users_api: Any, smtp: SmtpSink) -> Iterator[Stack]:
    users = users_api(UsersConfig(bootstrap_admin_email=ADMIN))
    clock = Clock()
    config = console_config(users.running.address, smtp.port)
    server = ConsoleServer(config, clock)
    server.start()
    yield Stack(users, server, smtp, clock)
    server.stop(timeout=2)


def sign_in_by_email(page: Any, stack: Stack, email: str) -> None:
    page.goto(f"{stack.url}/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_text("a sign-in link is on its way").wait_for()
    page.goto(stack.link_in_next_mail(email, "/signin/link"))
    page.get_by_role("button", name="Continue to the console").click()
    page.get_by_role("heading", name="Users").wait_for()
