"""Every variable of the README's configuration tables, read through the public entry points:
set to something other than its default it changes the config, unset it gives the default, and
a bad value is a ConfigError naming it (which `serve` turns into exit 2)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.rules.config import RulesConfig
from services.runtime.config import ConfigError, ServiceSettings, database_url, service_address
from services.runtime.sealing import new_key
from services.runtime.service_cli import make_service_cli
from services.sync.config import SyncConfig
from services.users.app import SPEC as USERS_SPEC
from services.users.config import DEFAULT_SCIM_PORT, ScimSettings, SmtpSettings, UsersConfig
from services.users.domain.model import License, UserStatus

SECRET = "config-secret-" + "z" * 32
KEY = new_key()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of the developer's STEWARD_* variables; only the secret every service needs."""
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STEWARD_JWT_SECRET", SECRET)


def service(name: str = "rules") -> ServiceSettings:
    return ServiceSettings.from_env(name)


# variable, a value other than the default, what reads it, what that gives.
READ: list[tuple[str, str, Callable[[], object], object]] = [
    ("STEWARD_JWT_SECRET", "j" * 40, lambda: service().jwt_secret, "j" * 40),
    ("STEWARD_RULES_DATABASE_URL", "postgresql+psycopg://db/rules", lambda: service().database_url, None),
    ("STEWARD_DATA_DIR", "/srv/steward", lambda: service().database_url, "sqlite:////srv/steward/rules.db"),
    ("STEWARD_RULES_HOST", "0.0.0.0", lambda: service().host, "0.0.0.0"),
    ("STEWARD_HOST", "10.0.0.1", lambda: service().host, "10.0.0.1"),
    ("STEWARD_RULES_PORT", "6000", lambda: service().port, 6000),
    ("STEWARD_RULES_METRICS_PORT", "-1", lambda: service().metrics_port, -1),
    ("STEWARD_RULES_ADDRESS", "dns:///rules:50052", lambda: service_address("rules"), "dns:///rules:50052"),
    ("STEWARD_MIGRATE_ON_START", "false", lambda: service().migrate_on_start, False),
    ("STEWARD_LOG_LEVEL", "DEBUG", lambda: service().log_level, "debug"),
    ("STEWARD_LOG_FORMAT", "console", lambda: service().log_format, "console"),
    ("STEWARD_GRACE_SECONDS", "20", lambda: service().grace_seconds, 20.0),
    ("STEWARD_DRAIN_DELAY_SECONDS", "5", lambda: service().drain_delay_seconds, 5.0),
    ("STEWARD_HEALTH_CHECK_INTERVAL_SECONDS", "0.5", lambda: service().health_check_interval_seconds, 0.5),
    ("STEWARD_MAX_WORKERS", "4", lambda: service().max_workers, 4),
    ("STEWARD_SECRETS_KEYS", KEY, lambda: service().secrets_keys, KEY),
    ("STEWARD_MAX_CONNECTION_AGE_SECONDS", "300", lambda: service().max_connection_age_seconds, 300.0),
    ("STEWARD_BOOTSTRAP_ADMIN_EMAIL", " root@corp.io ", lambda: UsersConfig.from_env().bootstrap_admin_email, None),
    ("STEWARD_LICENSE_LIMITS", "practitioner=50,VIEWER=0", lambda: UsersConfig.from_env().licenses.limits, None),
    ("STEWARD_LICENSE_EXEMPT_DOMAINS", "Partner.io, ,x.org", lambda: UsersConfig.from_env().licenses, None),
    ("STEWARD_USERS_UUID_MODE", "true", lambda: UsersConfig.from_env().uuid_mode, True),
    ("STEWARD_INVITATION_TTL_HOURS", "1.5", lambda: UsersConfig.from_env().invitation_ttl_hours, 1.5),
    (
        "STEWARD_ACCEPT_URL_TEMPLATE",
        "https://s.io/a?t={token}",
        lambda: UsersConfig.from_env().accept_url_template,
        None,
    ),
    ("STEWARD_SMTP_HOST", "mail.corp.io", lambda: UsersConfig.from_env().smtp.host, "mail.corp.io"),
    ("STEWARD_SMTP_PORT", "2525", lambda: UsersConfig.from_env().smtp.port, 2525),
    ("STEWARD_SMTP_FROM", "Ops <ops@corp.io>", lambda: UsersConfig.from_env().smtp.sender, "Ops <ops@corp.io>"),
    ("STEWARD_SMTP_POLL_SECONDS", "0.25", lambda: UsersConfig.from_env().smtp.poll_seconds, 0.25),
    ("STEWARD_EMPLOYEE_HIERARCHY", "false", lambda: UsersConfig.from_env().employee_hierarchy, False),
    ("STEWARD_USERS_SCIM_PORT", "-1", lambda: UsersConfig.from_env().scim.port, -1),
    ("STEWARD_SCIM_CREATE_STATUS", "Active", lambda: UsersConfig.from_env().scim.create_status, UserStatus.ACTIVE),
    ("STEWARD_SCIM_DEPROVISION_HEIR", " heir@corp.io", lambda: UsersConfig.from_env().scim.deprovision_heir, None),
    ("STEWARD_SCIM_DEFAULT_LICENSE", "contributor", lambda: UsersConfig.from_env().scim.default_license, None),
    ("STEWARD_SCIM_THREADS", "2", lambda: UsersConfig.from_env().scim.threads, 2),
    ("STEWARD_USERS_ADDRESS", "dns:///users:50051", lambda: RulesConfig.from_env().users_address, None),
    ("STEWARD_USERS_ADDRESS", "dns:///users:50051", lambda: SyncConfig.from_env().users_address, None),
    ("STEWARD_RULES_USERS_DEADLINE_SECONDS", "2", lambda: RulesConfig.from_env().users_deadline_seconds, 2.0),
    ("STEWARD_RULES_RUN_RETRY_BASE_SECONDS", "1", lambda: RulesConfig.from_env().run_retry_base_seconds, 1.0),
    ("STEWARD_RULES_RUN_RETRY_MAX_SECONDS", "9", lambda: RulesConfig.from_env().run_retry_max_seconds, 9.0),
    ("STEWARD_RULES_CONSUME_USERS_EVENTS", "false", lambda: RulesConfig.from_env().consume_users_events, False),
    ("STEWARD_RULES_TIME_PASS_SECONDS", "5", lambda: RulesConfig.from_env().time_pass_seconds, 5.0),
    ("STEWARD_RULES_MANUAL_RUNS_PER_MINUTE", "7", lambda: RulesConfig.from_env().manual_runs_per_minute, 7),
    ("STEWARD_RULES_WEBHOOK_ATTEMPTS", "2", lambda: RulesConfig.from_env().webhook_attempts, 2),
    ("STEWARD_RULES_WEBHOOK_BACKOFF_SECONDS", "0.1", lambda: RulesConfig.from_env().webhook_backoff_seconds, 0.1),
    ("STEWARD_RULES_LEASE_SECONDS", "30", lambda: RulesConfig.from_env().lease_seconds, 30.0),
    ("STEWARD_RULES_PARTITIONS", "64", lambda: RulesConfig.from_env().run_partitions, 64),
    ("STEWARD_RULES_EXECUTOR_BATCH", "50", lambda: RulesConfig.from_env().executor_batch, 50),
    ("STEWARD_SYNC_RUN_LEASE_SECONDS", "120", lambda: SyncConfig.from_env().run_lease_seconds, 120.0),
    ("STEWARD_SYNC_SCHEDULER_POLL_SECONDS", "5", lambda: SyncConfig.from_env().scheduler_poll_seconds, 5.0),
    ("STEWARD_SYNC_SALESFORCE_ATTEMPTS", "3", lambda: SyncConfig.from_env().salesforce_attempts, 3),
    (
        "STEWARD_SYNC_SALESFORCE_MAX_BACKOFF_SECONDS",
        "4",
        lambda: SyncConfig.from_env().salesforce_max_backoff_seconds,
        4,
    ),
]
# Where the value is not the variable's text as such.
EXPECTED = {
    "STEWARD_RULES_DATABASE_URL": "postgresql+psycopg://db/rules",
    "STEWARD_BOOTSTRAP_ADMIN_EMAIL": "root@corp.io",
    "STEWARD_LICENSE_LIMITS": {License.PRACTITIONER: 50, License.VIEWER: 0},
    "STEWARD_ACCEPT_URL_TEMPLATE": "https://s.io/a?t={token}",
    "STEWARD_SCIM_DEPROVISION_HEIR": "heir@corp.io",
    "STEWARD_SCIM_DEFAULT_LICENSE": License.CONTRIBUTOR,
    "STEWARD_USERS_ADDRESS": "dns:///users:50051",
}


@pytest.mark.parametrize(
    ("variable", "value", "read", "expected"), READ, ids=[f"{r[0]}-{i}" for i, r in enumerate(READ)]
)
def test_every_documented_variable_is_read(monkeypatch, variable, value, read, expected):
    default = read()
    monkeypatch.setenv(variable, value)
    got = read()
    if variable == "STEWARD_LICENSE_EXEMPT_DOMAINS":
        assert got.exempt_domains == {"partner.io", "x.org"}
    else:
        assert got == (EXPECTED[variable] if expected is None else expected)
    assert got != default, f"{variable}={value} is the default: the test proves nothing"


def test_an_empty_variable_is_unset(monkeypatch):
    for variable, *_ in READ[1:]:
        monkeypatch.setenv(variable, "")
    assert service("users").port == 50051
    assert UsersConfig.from_env() == UsersConfig(scim=ScimSettings(port=DEFAULT_SCIM_PORT))
    assert RulesConfig.from_env() == RulesConfig()


def test_defaults_when_unset(monkeypatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)
    users, rules, sync = service("users"), service("rules"), service("sync")
    assert (users.port, rules.port, sync.port) == (50051, 50052, 50053)
    assert (users.metrics_port, rules.metrics_port, sync.metrics_port) == (9451, 9452, 9453)
    assert rules.database_url == database_url("rules") == f"sqlite:///{tmp_path}/var/rules.db"
    assert rules.host == "127.0.0.1" and rules.migrate_on_start is True
    assert (rules.log_level, rules.log_format, rules.secrets_keys) == ("info", "json", "")
    assert (rules.grace_seconds, rules.drain_delay_seconds, rules.health_check_interval_seconds) == (10, 0, 5)
    assert (rules.max_workers, rules.max_connection_age_seconds) == (16, 0)
    assert service_address("sync") == "127.0.0.1:50053"

    config = UsersConfig.from_env()
    assert config.licenses.limits == {} and config.licenses.exempt_domains == frozenset()
    assert (config.uuid_mode, config.invitation_ttl_hours, config.employee_hierarchy) == (False, 168, True)
    assert config.accept_url_template == "http://localhost:8080/accept-invitation?token={token}"
    assert config.bootstrap_admin_email == "" and not config.smtp.enabled
    assert config.smtp == SmtpSettings(port=25, sender="Steward <no-reply@steward.local>", poll_seconds=1)
    assert config.scim == ScimSettings(
        port=50061, create_status=UserStatus.CREATED, deprovision_heir="", default_license=License.VIEWER, threads=8
    )
    assert RulesConfig.from_env() == RulesConfig(
        users_address="127.0.0.1:50051",
        users_deadline_seconds=5,
        run_retry_base_seconds=0.5,
        run_retry_max_seconds=30,
        consume_users_events=True,
        lease_seconds=15,
        run_partitions=16,
        executor_batch=500,
        time_pass_seconds=60,
        manual_runs_per_minute=100,
        webhook_attempts=4,
        webhook_backoff_seconds=0.5,
    )
    assert SyncConfig.from_env() == SyncConfig(
        users_address="127.0.0.1:50051",
        run_lease_seconds=60,
        scheduler_poll_seconds=30,
        salesforce_attempts=8,
        salesforce_max_backoff_seconds=30,
    )


def test_migrate_on_start_follows_the_database_unless_forced(monkeypatch):
    monkeypatch.setenv("STEWARD_RULES_DATABASE_URL", "postgresql+psycopg://db/rules")
    assert service().migrate_on_start is False
    monkeypatch.setenv("STEWARD_MIGRATE_ON_START", "TRUE")
    assert service().migrate_on_start is True
    monkeypatch.delenv("STEWARD_RULES_DATABASE_URL")
    monkeypatch.setenv("STEWARD_MIGRATE_ON_START", "false")
    assert service().migrate_on_start is False


def test_the_service_address_wins_over_the_shared_host(monkeypatch):
    monkeypatch.setenv("STEWARD_HOST", "0.0.0.0")
    monkeypatch.setenv("STEWARD_RULES_HOST", "10.1.1.1")
    assert service("rules").host == "10.1.1.1" and service("sync").host == "0.0.0.0"


def test_configs_built_in_code_ignore_the_environment(monkeypatch):
    monkeypatch.setenv("STEWARD_USERS_ADDRESS", "dns:///elsewhere:1")
    monkeypatch.setenv("STEWARD_SYNC_SCHEDULER_POLL_SECONDS", "1")
    monkeypatch.setenv("STEWARD_SMTP_HOST", "mail.corp.io")
    assert SyncConfig(salesforce_attempts=3) == SyncConfig(
        users_address="127.0.0.1:50051", scheduler_poll_seconds=30, salesforce_attempts=3
    )
    # SCIM is off in configs built in code, on its port when read from the environment.
    assert UsersConfig().smtp.host == "" and UsersConfig().scim.port == -1


def test_fields_no_variable_sets_are_not_read(monkeypatch):
    monkeypatch.setenv("STEWARD_RULES_CLOCK", "not callable")
    monkeypatch.setenv("STEWARD_SMTP_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("STEWARD_RULES_SERVICE", "users")
    assert RulesConfig.from_env().clock is RulesConfig().clock
    assert UsersConfig.from_env().smtp.max_attempts == 10
    assert service("rules").service == "rules"


FERNET = "every key must be a Fernet key: 32 url-safe base64-encoded bytes"
read_users, read_rules, read_sync = UsersConfig.from_env, RulesConfig.from_env, SyncConfig.from_env
# variable, a bad value, what reads it, the message after the variable (the README's wording where it gives one).
BAD: list[tuple[str, str, Callable[[], object], str]] = [
    ("STEWARD_JWT_SECRET", "short", service, " must be set to at least 32 characters (HS256 wants a 256-bit key)"),
    ("STEWARD_RULES_PORT", "http", service, " must be an integer, got 'http'"),
    ("STEWARD_RULES_METRICS_PORT", "off", service, " must be an integer, got 'off'"),
    ("STEWARD_MIGRATE_ON_START", "maybe", service, " must be auto, true or false, got 'maybe'"),
    ("STEWARD_GRACE_SECONDS", "10s", service, " must be a number, got '10s'"),
    ("STEWARD_DRAIN_DELAY_SECONDS", "5s", service, " must be a number, got '5s'"),
    ("STEWARD_HEALTH_CHECK_INTERVAL_SECONDS", "x", service, " must be a number, got 'x'"),
    ("STEWARD_MAX_WORKERS", "many", service, " must be an integer, got 'many'"),
    ("STEWARD_SECRETS_KEYS", "not-a-key", service, f": {FERNET}"),
    ("STEWARD_MAX_CONNECTION_AGE_SECONDS", "5m", service, " must be a number, got '5m'"),
    (
        "STEWARD_LICENSE_LIMITS",
        "GOLD=3",
        read_users,
        " must look like PRACTITIONER=50,VIEWER=200: 'GOLD' is not a valid License",
    ),
    ("STEWARD_USERS_UUID_MODE", "maybe", read_users, " must be true or false, got 'maybe'"),
    ("STEWARD_INVITATION_TTL_HOURS", "a week", read_users, " must be a number, got 'a week'"),
    ("STEWARD_ACCEPT_URL_TEMPLATE", "https://s.io/", read_users, " must contain {token}"),
    ("STEWARD_SMTP_PORT", "smtp", read_users, " must be an integer, got 'smtp'"),
    ("STEWARD_SMTP_POLL_SECONDS", "1s", read_users, " must be a number, got '1s'"),
    ("STEWARD_EMPLOYEE_HIERARCHY", "flase", read_users, " must be true or false, got 'flase'"),
    ("STEWARD_USERS_SCIM_PORT", "off", read_users, " must be an integer, got 'off'"),
    ("STEWARD_SCIM_CREATE_STATUS", "sso", read_users, " must be created or active, got 'sso'"),
    (
        "STEWARD_SCIM_DEFAULT_LICENSE",
        "gold",
        read_users,
        " must be one of PRACTITIONER, CONTRIBUTOR, VIEWER, got 'GOLD'",
    ),
    ("STEWARD_SCIM_THREADS", "eight", read_users, " must be an integer, got 'eight'"),
    ("STEWARD_RULES_USERS_DEADLINE_SECONDS", "x", read_rules, " must be a number, got 'x'"),
    ("STEWARD_RULES_RUN_RETRY_BASE_SECONDS", "x", read_rules, " must be a number, got 'x'"),
    ("STEWARD_RULES_RUN_RETRY_MAX_SECONDS", "x", read_rules, " must be a number, got 'x'"),
    ("STEWARD_RULES_CONSUME_USERS_EVENTS", "nope", read_rules, " must be true or false, got 'nope'"),
    ("STEWARD_RULES_TIME_PASS_SECONDS", "x", read_rules, " must be a number, got 'x'"),
    ("STEWARD_RULES_MANUAL_RUNS_PER_MINUTE", "lots", read_rules, " must be an integer, got 'lots'"),
    ("STEWARD_RULES_WEBHOOK_ATTEMPTS", "x", read_rules, " must be an integer, got 'x'"),
    ("STEWARD_RULES_WEBHOOK_BACKOFF_SECONDS", "x", read_rules, " must be a number, got 'x'"),
    ("STEWARD_RULES_LEASE_SECONDS", "x", read_rules, " must be a number, got 'x'"),
    ("STEWARD_RULES_PARTITIONS", "0", read_rules, " must be at least 1, got 0"),
    ("STEWARD_RULES_PARTITIONS", "x", read_rules, " must be an integer, got 'x'"),
    ("STEWARD_RULES_EXECUTOR_BATCH", "0", read_rules, " must be at least 1, got 0"),
    ("STEWARD_SYNC_RUN_LEASE_SECONDS", "x", read_sync, " must be a number, got 'x'"),
    ("STEWARD_SYNC_SCHEDULER_POLL_SECONDS", "x", read_sync, " must be a number, got 'x'"),
    ("STEWARD_SYNC_SALESFORCE_ATTEMPTS", "x", read_sync, " must be an integer, got 'x'"),
    ("STEWARD_SYNC_SALESFORCE_MAX_BACKOFF_SECONDS", "x", read_sync, " must be a number, got 'x'"),
]


@pytest.mark.parametrize(("variable", "value", "read", "message"), BAD, ids=[f"{b[0]}={b[1]}" for b in BAD])
def test_a_bad_value_is_a_config_error_naming_the_variable(monkeypatch, variable, value, read, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        read()
    assert str(raised.value) == variable + message


def test_no_jwt_secret_at_all_is_the_same_error(monkeypatch):
    monkeypatch.delenv("STEWARD_JWT_SECRET")
    with pytest.raises(ConfigError, match=r"^STEWARD_JWT_SECRET must be set to at least 32 characters"):
        ServiceSettings.from_env("users")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STEWARD_JWT_SECRET", "", "STEWARD_JWT_SECRET must be set to at least 32 characters"),
        ("STEWARD_USERS_PORT", "http", "STEWARD_USERS_PORT must be an integer, got 'http'"),
        ("STEWARD_SECRETS_KEYS", "not-a-key", f"STEWARD_SECRETS_KEYS: {FERNET}"),
    ],
)
def test_serve_exits_2_with_the_message(variable, value, message):
    env = {"STEWARD_JWT_SECRET": SECRET, variable: value}
    result = CliRunner().invoke(make_service_cli(USERS_SPEC), ["serve"], env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"configuration error: {message}")
    assert "Traceback" not in result.output and "validation error" not in result.output
