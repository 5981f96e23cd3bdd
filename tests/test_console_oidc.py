"""Signing in through an identity provider (OIDC) in a real browser: the console against the
local stand-in provider (tools/oidc_standin), which speaks the real protocol (discovery, JWKS,
code flow with PKCE, RS256 ID tokens). An active user gets in; a disabled one, a forged callback
and an ID token meant for another application are refused in words. Then the new settings."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from services.console.app import create_app
from services.console.config import ConsoleConfig
from services.console.server import ConsoleServer
from services.runtime.config import ConfigError
from services.users.config import UsersConfig
from steward.users.v1 import users_pb2
from tests.console_kit import ADMIN, Clock, Stack, console_config
from tests.test_console_users import active_user
from tools.oidc_standin import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OidcStandin

PROVIDER = "Stand-in IdP"
SECRET = "console-oidc-secret-" + "s" * 32


@dataclass
class OidcStack:
    stack: Stack
    standin: OidcStandin

    @property
    def url(self) -> str:
        return self.stack.url


def _free_port() -> int:
    # The provider must know the callback before the console starts, so the port is chosen first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def oidc(users_api, smtp) -> Iterator[OidcStack]:
    users = users_api(UsersConfig(bootstrap_admin_email=ADMIN))
    port = _free_port()
    public_url = f"http://127.0.0.1:{port}"
    standin = OidcStandin(redirect_uris=(f"{public_url}/signin/oidc/callback",)).start()
    config = console_config(
        users.running.address,
        smtp.port,
        port=port,
        public_url=public_url,
        oidc_issuer=standin.issuer,
        oidc_client_id=DEFAULT_CLIENT_ID,
        oidc_client_secret=DEFAULT_CLIENT_SECRET,
        oidc_name=PROVIDER,
    )
    clock = Clock()
    server = ConsoleServer(config, clock)
    server.start()
    yield OidcStack(Stack(users, server, smtp, clock), standin)
    server.stop(timeout=2)
    standin.stop()


def _click_sign_in(page, oidc: OidcStack, email: str) -> None:
    oidc.standin.sign_in_as(email)
    page.goto(f"{oidc.url}/signin")
    page.get_by_role("button", name=f"Sign in with {PROVIDER}").click()


@pytest.mark.slow
def test_an_active_user_signs_in_through_the_provider(oidc: OidcStack, page) -> None:
    grace = active_user(oidc.stack, "grace@example.com", "Grace", "Hopper")
    # The provider's address in another case is still Grace's (addresses compare case-insensitively).
    oidc.standin.sign_in_as("Grace@Example.com")
    page.goto(f"{oidc.url}/teams")
    assert "/signin" in page.url
    # With OIDC on, the one-time email link is off unless asked for.
    assert page.get_by_role("button", name="Email me a sign-in link").count() == 0
    other = page.context.new_page()
    other.goto(f"{oidc.url}/signin/link?token=anything")
    other.get_by_text(f"Sign-in links are turned off here. Sign in with {PROVIDER} instead.").wait_for()
    other.close()
    page.get_by_role("button", name=f"Sign in with {PROVIDER}").click()
    page.wait_for_url(f"{oidc.url}/teams")  # back where the person was going
    page.goto(f"{oidc.url}/users")
    page.get_by_role("heading", name="Users").wait_for()
    assert page.locator(".who").inner_text() == grace.email

    # Signed out, then in again as the administrator: a new session each time.
    page.get_by_role("button", name="Sign out").click()
    _click_sign_in(page, oidc, ADMIN)
    page.get_by_role("heading", name="Users").wait_for()
    assert page.locator(".who").inner_text() == ADMIN


@pytest.mark.slow
def test_a_disabled_or_unknown_person_is_refused_in_words(oidc: OidcStack, page) -> None:
    grace = active_user(oidc.stack, "grace@example.com", "Grace", "Hopper")
    oidc.stack.users.users.DisableUser(users_pb2.DisableUserRequest(name=grace.name), metadata=oidc.stack.admin_meta())
    _click_sign_in(page, oidc, "grace@example.com")
    page.get_by_text("The Steward account of grace@example.com may not sign in (it is not active).").wait_for()
    page.goto(f"{oidc.url}/users")
    assert "/signin" in page.url  # no session was made

    _click_sign_in(page, oidc, "nobody@example.com")
    page.get_by_text("No Steward user has the address nobody@example.com.").wait_for()

    # An address the provider has not verified proves nothing.
    oidc.standin.sign_in_as(ADMIN, email_verified=False)
    page.goto(f"{oidc.url}/signin")
    page.get_by_role("button", name=f"Sign in with {PROVIDER}").click()
    page.get_by_text(f"{PROVIDER} has not verified the address {ADMIN}").wait_for()
    page.goto(f"{oidc.url}/users")
    assert "/signin" in page.url


@pytest.mark.slow
def test_a_tampered_callback_is_refused(oidc: OidcStack, page) -> None:
    # The provider shows a Continue link instead of redirecting, so the answer can be altered.
    oidc.standin.sign_in_as(ADMIN)
    oidc.standin.consent = True
    page.goto(f"{oidc.url}/signin")
    page.get_by_role("button", name=f"Sign in with {PROVIDER}").click()
    answer_url = page.get_by_role("link", name="Continue").get_attribute("href")
    assert answer_url and "/signin/oidc/callback?" in answer_url
    answer = parse_qs(urlsplit(answer_url).query)
    forged = {"code": answer["code"][0], "state": "forged-" + answer["state"][0]}
    page.goto(f"{oidc.url}/signin/oidc/callback?{urlencode(forged)}")
    page.get_by_text("This sign-in answer does not belong to a sign-in started in this browser").wait_for()
    assert "Traceback" not in page.content()
    page.goto(f"{oidc.url}/users")
    assert "/signin" in page.url

    # The untouched answer still works once: the forged one consumed nothing.
    page.goto(answer_url)
    page.get_by_role("heading", name="Users").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.goto(answer_url)  # replayed: its state was used up by the sign-in
    page.get_by_text("This sign-in answer does not belong to a sign-in started in this browser").wait_for()

    # The provider's own refusal (the person cancelled) is a page in words too.
    oidc.standin.consent = False
    oidc.standin.sign_in_as(None)
    page.goto(f"{oidc.url}/signin")
    page.get_by_role("button", name=f"Sign in with {PROVIDER}").click()
    page.get_by_text(f"{PROVIDER} did not sign you in").wait_for()


@pytest.mark.slow
def test_an_id_token_for_another_audience_or_forged_is_refused(oidc: OidcStack, page) -> None:
    oidc.standin.audience = "some-other-app"
    _click_sign_in(page, oidc, ADMIN)
    page.get_by_text(f"The answer of {PROVIDER} could not be verified, so you are not signed in.").wait_for()
    page.goto(f"{oidc.url}/users")
    assert "/signin" in page.url
    # Signed by a key the provider does not publish, or answering another sign-in's nonce.
    oidc.standin.audience = None
    oidc.standin.rogue_key = True
    _click_sign_in(page, oidc, ADMIN)
    page.get_by_text(f"The answer of {PROVIDER} could not be verified, so you are not signed in.").wait_for()
    oidc.standin.rogue_key = False
    oidc.standin.nonce = "a-nonce-of-another-sign-in"
    _click_sign_in(page, oidc, ADMIN)
    page.get_by_text(f"The answer of {PROVIDER} could not be verified, so you are not signed in.").wait_for()
    page.goto(f"{oidc.url}/users")
    assert "/signin" in page.url
    # The same provider, a token as it should be: in.
    oidc.standin.nonce = None
    _click_sign_in(page, oidc, ADMIN)
    page.get_by_role("heading", name="Users").wait_for()


def test_a_provider_that_cannot_be_reached_is_a_page_in_words() -> None:
    issuer = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    config = ConsoleConfig(
        jwt_secret=SECRET, oidc_issuer=issuer, oidc_client_id="id", oidc_client_secret="secret", oidc_name="Okta"
    )
    app = create_app(config)
    app.config["WTF_CSRF_ENABLED"] = False  # the form's token is the browser tests' business
    try:
        reply = app.test_client().post("/signin/oidc")
        body = reply.get_data(as_text=True)
        assert reply.status_code == 502, body
        assert "Okta (the identity provider) could not be reached" in body and "Traceback" not in body
    finally:
        app.extensions["steward_console"].gateway.close()


def test_the_standin_enforces_pkce_and_client_auth() -> None:
    """The stand-in must refuse what a real provider refuses, or the browser tests prove little."""
    callback = "http://127.0.0.1:9/cb"
    standin = OidcStandin(email=ADMIN, redirect_uris=(callback,)).start()
    try:
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {"response_type": "code", "client_id": DEFAULT_CLIENT_ID, "redirect_uri": callback}
        query |= {"scope": "openid email", "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
        status, headers, _ = standin.authorize(query)
        code = parse_qs(urlsplit(headers["Location"]).query)["code"][0]
        assert status == 302
        assert standin.authorize({**query, "redirect_uri": "http://evil.example/cb"})[0] == 400
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback}
        assert _post_token(standin, {**form, "code_verifier": verifier, "client_secret": "wrong"})[0] == 401
        right = {**form, "client_secret": DEFAULT_CLIENT_SECRET}
        status, body = _post_token(standin, {**right, "code_verifier": "x" * 50})
        assert (status, body["error"]) == (400, "invalid_grant")
        # The wrong verifier used the code up: a code works once, whatever the outcome.
        assert _post_token(standin, {**right, "code_verifier": verifier})[0] == 400
    finally:
        standin.stop()


def _post_token(standin: OidcStandin, form: dict[str, str]) -> tuple[int, dict[str, str]]:
    data = urlencode({**form, "client_id": DEFAULT_CLIENT_ID}).encode()
    try:
        with urllib.request.urlopen(f"{standin.issuer}/token", data=data, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture
def console_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)


def test_oidc_settings_are_read_and_checked(monkeypatch, console_env) -> None:
    plain = ConsoleConfig.from_env()
    assert (plain.oidc_on, plain.email_links_on) == (False, True)

    monkeypatch.setenv("STEWARD_CONSOLE_OIDC_ISSUER", "https://corp.okta.com/")
    with pytest.raises(ConfigError, match=r"^STEWARD_CONSOLE_OIDC_CLIENT_ID must be set"):
        ConsoleConfig.from_env()
    monkeypatch.setenv("STEWARD_CONSOLE_OIDC_CLIENT_ID", "0oa1steward")
    with pytest.raises(ConfigError, match=r"^STEWARD_CONSOLE_OIDC_CLIENT_SECRET must be set"):
        ConsoleConfig.from_env()
    monkeypatch.setenv("STEWARD_CONSOLE_OIDC_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("STEWARD_CONSOLE_OIDC_NAME", "Okta")
    config = ConsoleConfig.from_env()
    assert (config.oidc_on, config.email_links_on, config.oidc_name) == (True, False, "Okta")
    assert config.oidc_discovery_url == "https://corp.okta.com/.well-known/openid-configuration"
    assert "s3cret" not in repr(config)

    monkeypatch.setenv("STEWARD_CONSOLE_EMAIL_LINKS", "true")
    assert ConsoleConfig.from_env().email_links_on is True
    monkeypatch.setenv("STEWARD_CONSOLE_EMAIL_LINKS", "sometimes")
    with pytest.raises(ConfigError, match=r"^STEWARD_CONSOLE_EMAIL_LINKS must be true or false, got 'sometimes'"):
        ConsoleConfig.from_env()
    monkeypatch.delenv("STEWARD_CONSOLE_EMAIL_LINKS")

    # Tokens cross the network: plain http only for a provider on this machine (the stand-in).
    monkeypatch.setenv("STEWARD_CONSOLE_OIDC_ISSUER", "http://idp.corp.example")
    with pytest.raises(ConfigError, match=r"^STEWARD_CONSOLE_OIDC_ISSUER must be an https URL"):
        ConsoleConfig.from_env()
    monkeypatch.setenv("STEWARD_CONSOLE_OIDC_ISSUER", "http://127.0.0.1:9400")
    assert ConsoleConfig.from_env().oidc_issuer == "http://127.0.0.1:9400"
