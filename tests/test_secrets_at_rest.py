"""Salesforce credentials sealed at rest (runtime/sealing.py): what the database holds, that the
sync service still uses them, and key rotation with `steward-sync reseal-secrets`."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from sqlalchemy import create_engine, text

from services.runtime.errors import FailedPrecondition
from services.runtime.sealing import PREFIX, Keyring, MalformedKey, new_key
from services.sync.app import build_spec
from services.sync.config import SyncConfig
from steward.sync.v1 import jobs_pb2
from tests.processes import python_module
from tests.seed import add_user
from tests.test_sync_etm import SyncApi, build_org, make_job, run
from tools.salesforce_standin import Emulator

OLD, NEW = new_key(), new_key()


# --- the keyring (no servers) ---


def test_a_sealed_value_opens_with_its_key_and_reveals_nothing():
    ring = Keyring([OLD])
    sealed = ring.seal("s3cret-value")
    assert sealed.startswith(PREFIX) and "s3cret-value" not in sealed
    assert ring.open(sealed) == "s3cret-value"
    assert ring.seal("s3cret-value") != sealed  # randomised: equal secrets do not look equal
    assert ring.seal("") == ""  # no secret stays no secret


def test_values_stored_without_a_key_are_read_as_they_are_and_sealed_by_reseal():
    assert Keyring().open("plain") == "plain" and Keyring().seal("plain") == "plain"
    resealed = Keyring([OLD]).reseal("plain")
    assert resealed.startswith(PREFIX) and Keyring([OLD]).open(resealed) == "plain"


def test_rotation_the_first_key_seals_every_key_opens():
    old_sealed = Keyring([OLD]).seal("v")
    rotating = Keyring([NEW, OLD])
    assert rotating.open(old_sealed) == "v"
    resealed = rotating.reseal(old_sealed)
    assert Keyring([NEW]).open(resealed) == "v"  # the old key can go
    with pytest.raises(FailedPrecondition) as unknown:
        Keyring([NEW]).open(old_sealed)
    assert unknown.value.reason == "SECRET_KEY_UNKNOWN"
    with pytest.raises(FailedPrecondition) as missing:
        Keyring().open(old_sealed)
    assert missing.value.reason == "SECRET_SEALED"


def test_a_malformed_key_is_refused():
    with pytest.raises(MalformedKey):
        Keyring.from_text("not-a-key")
    assert Keyring.from_text(f" {OLD} , {NEW} ").seals


# --- the sync service ---


def _stored(url: str, query: str) -> str:
    """A column as the database holds it (read around the service)."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def _stored_secret(url: str) -> str:
    return _stored(url, "SELECT client_secret FROM connections")


def test_connection_secrets_are_sealed_used_and_rotated(serve, users_api, databases, admin):
    territories = build_org()
    url = databases.url("sync_sealed")
    with Emulator(territories.org) as salesforce:
        users = users_api()
        for email in ("ann@acme.io", "bob@acme.io", "cat@acme.io", "dan@acme.io"):
            add_user(users.db, email)
        config = SyncConfig(users_address=users.running.address, scheduler_poll_seconds=3600)
        sync = serve(build_spec(config), database_url=url, secrets_keys=OLD)
        api = SyncApi(sync, users, salesforce, territories)
        job = make_job(api, admin)  # creates the connection with the emulator's client secret

        stored = _stored_secret(url)
        assert stored.startswith(PREFIX) and salesforce.client_secret not in stored
        assert run(api, admin, job).state == jobs_pb2.RUN_STATE_SUCCEEDED  # the service opens it

        # Rotation: the new key first, reseal, and the old key is no longer needed.
        resealing = python_module(
            "services.sync",
            "reseal-secrets",
            env={"STEWARD_SYNC_DATABASE_URL": url, "STEWARD_SECRETS_KEYS": f"{NEW},{OLD}"},
        )
        assert resealing.finish() == 0, resealing.output()
        assert "1 record(s) sealed with the first key" in "\n".join(resealing.stderr)
        rotated = _stored_secret(url)
        assert rotated != stored and Keyring([NEW]).open(rotated) == salesforce.client_secret

        again = SyncApi(serve(build_spec(config), database_url=url, secrets_keys=NEW), users, salesforce, territories)
        assert run(again, admin, job).state == jobs_pb2.RUN_STATE_SUCCEEDED

        # A replica given only a key that never sealed it cannot open the credential: the run
        # says so, with no stack trace and nothing half-done.
        stranger = SyncApi(
            serve(build_spec(config), database_url=url, secrets_keys=new_key()), users, salesforce, territories
        )
        progress = stranger.jobs.RunJob(jobs_pb2.RunJobRequest(name=job.name), metadata=admin)
        refused = list(progress)[-1].run
        assert (refused.state, refused.error_code) == (jobs_pb2.RUN_STATE_FAILED, "SECRET_KEY_UNKNOWN")


def test_a_service_with_a_malformed_key_does_not_start(databases):
    process = python_module(
        "services.sync",
        "serve",
        env={
            "STEWARD_JWT_SECRET": "x" * 32,
            "STEWARD_SYNC_DATABASE_URL": databases.url("sync_badkey"),
            "STEWARD_SECRETS_KEYS": "not-a-key",
        },
    )
    assert process.finish() == 2
    assert "STEWARD_SECRETS_KEYS" in "\n".join(process.stderr)


# --- the rules service: play webhook keys ---


def _stored_webhook_secret(url: str) -> str:
    return _stored(url, "SELECT webhook_secret FROM plays")


def test_webhook_keys_are_sealed_and_still_sign(serve, users_api, databases, admin):
    from services.rules.app import build_spec as rules_spec
    from steward.rules.v1 import plays_pb2
    from tests.conftest import RulesApi, rules_config
    from tests.errors import call_fails
    from tests.plays_kit import create_play, play_message
    from tests.test_rules_segments import MANUAL, Receiver, _run_play, csm, settle, task_action, update

    users = users_api()
    url = databases.url("rules_sealed")
    api = RulesApi(serve(rules_spec(rules_config(users.running.address)), database_url=url, secrets_keys=OLD), users)
    secret = "k" * 40
    receiver = Receiver(failures=0)
    try:
        update(api, admin, "seed", {"segment": "SMB"})
        actions = [{"call_webhook": {"url": receiver.url}}, task_action("Follow up")]
        play = create_play(api, admin, "Tell the CRM", actions, kind=MANUAL, webhook_secret=secret, owner=csm(api))
        stored = _stored_webhook_secret(url)
        assert stored.startswith(PREFIX) and secret not in stored
        lookalike = play_message("Lookalike", actions, kind=MANUAL, webhook_secret=PREFIX + secret, owner=csm(api))
        refused = call_fails(api.plays.CreatePlay, plays_pb2.CreatePlayRequest(play=lookalike), metadata=admin)
        assert refused.violation_reasons == {"play.webhook_secret": "WEBHOOK_SECRET_INVALID"}

        # A change that leaves the key alone keeps it (the stored form passes validation).
        renamed = api.plays.UpdatePlay(
            plays_pb2.UpdatePlayRequest(
                play=plays_pb2.Play(name=play.name, display_name="Tell the CRM now", etag=play.etag),
                update_mask={"paths": ["display_name"]},
            ),
            metadata=admin,
        )
        assert renamed.has_webhook_secret and _stored_webhook_secret(url) == stored

        _run_play(api, admin, renamed, "acct-1")
        [run] = settle(api, admin, renamed, 1)
        assert run.outcome == plays_pb2.RUN_OUTCOME_APPLIED, run
        [(_, headers, body)] = receiver.deliveries
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Steward-Signature"], expected)  # signed with the key in the clear

        resealing = python_module(
            "services.rules",
            "reseal-secrets",
            env={"STEWARD_RULES_DATABASE_URL": url, "STEWARD_SECRETS_KEYS": f"{NEW},{OLD}"},
        )
        assert resealing.finish() == 0, resealing.output()
        assert Keyring([NEW]).open(_stored_webhook_secret(url)) == secret
    finally:
        receiver.close()
