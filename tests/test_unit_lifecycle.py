"""The lifecycle table and seat rules, as pure domain logic."""

from __future__ import annotations

import datetime as dt

import pytest

from services.runtime.errors import FailedPrecondition, ResourceExhausted
from services.users.domain.licenses import LicensePolicy, parse_limits
from services.users.domain.lifecycle import TRANSITIONS, Action, gains_seat, next_status
from services.users.domain.model import License, User, UserStatus
from services.users.domain.teams import ensure_no_manager_cycle

S = UserStatus
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _user(status: UserStatus, **kw) -> User:
    return User(
        id="u",
        email="u@example.com",
        first_name="",
        last_name="",
        status=status,
        license=License.PRACTITIONER,
        create_time=NOW,
        update_time=NOW,
        **kw,
    )


def test_rules_from_the_product():
    # Created users can be neither activated nor disabled; active users cannot be sent invitations.
    for action in (Action.ACTIVATE, Action.DISABLE):
        assert (S.CREATED, action) not in TRANSITIONS
    assert (S.ACTIVE, Action.SEND_INVITATION) not in TRANSITIONS
    # Disabled users can come back; deleted users are gone for good.
    assert TRANSITIONS[(S.DISABLED, Action.ACTIVATE)] is S.ACTIVE
    assert not [pair for pair in TRANSITIONS if pair[0] is S.DELETED]
    # Everyone but the deleted can be deleted.
    assert {s for s, a in TRANSITIONS if a is Action.DELETE} == set(S) - {S.DELETED}


@pytest.mark.parametrize("status", list(UserStatus))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair_either_moves_or_is_refused_with_a_reason(status, action):
    user = _user(status)
    if (status, action) in TRANSITIONS:
        assert next_status(user, action) is TRANSITIONS[(status, action)]
    else:
        with pytest.raises(FailedPrecondition) as err:
            next_status(user, action)
        assert err.value.reason == "TRANSITION_NOT_ALLOWED" and status.value in err.value.message


def test_global_admins_are_protected_before_the_table_is_consulted():
    with pytest.raises(FailedPrecondition) as err:
        next_status(_user(S.ACTIVE, global_admin=True), Action.DELETE)
    assert err.value.reason == "GLOBAL_ADMIN_PROTECTED"


def test_seats_are_gained_only_when_entering_created_or_active():
    assert gains_seat(S.DISABLED, S.ACTIVE) and gains_seat(S.CREATED_DISABLED, S.CREATED)
    assert not gains_seat(S.CREATED, S.ACTIVE) and not gains_seat(S.ACTIVE, S.DISABLED)


def test_license_policy():
    policy = LicensePolicy({License.PRACTITIONER: 2}, frozenset({"partner.io"}))
    assert policy.counts(S.ACTIVE, "a@example.com") and not policy.counts(S.ACTIVE, "a@PARTNER.io")
    assert not policy.counts(S.DISABLED, "a@example.com")
    policy.ensure_room(License.PRACTITIONER, 1, 1)
    policy.ensure_room(License.VIEWER, 10_000, 1)
    with pytest.raises(ResourceExhausted) as err:
        policy.ensure_room(License.PRACTITIONER, 2, 1)
    assert err.value.metadata["license"] == "PRACTITIONER"


def test_limits_parse_from_configuration():
    assert parse_limits("PRACTITIONER=5, viewer=0") == {License.PRACTITIONER: 5, License.VIEWER: 0}
    for bad in ("GURU=1", "PRACTITIONER=x", "PRACTITIONER=-1"):
        with pytest.raises(ValueError):
            parse_limits(bad)


def test_manager_cycles():
    managers = {"b": "a", "c": "b"}
    ensure_no_manager_cycle("d", "c", managers.get)
    for user, manager in (("a", "c"), ("a", "a")):
        with pytest.raises(FailedPrecondition):
            ensure_no_manager_cycle(user, manager, managers.get)
