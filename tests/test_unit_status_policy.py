"""The user-status policy: one entry per status, and every check that depends on a status reads it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import pytest

from services.runtime.db import table_of
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.users import convert
from services.users.adapters.orm import UserRecord
from services.users.adapters.scim_repository import ScimIdentity
from services.users.domain import status_policy
from services.users.domain.assignments import EmptyValue, Role, RoleSource, Source, WriteSource, ensure_eligible
from services.users.domain.licenses import LicensePolicy
from services.users.domain.lifecycle import TRANSITIONS, gains_seat
from services.users.domain.model import License, User, UserStatus
from services.users.domain.permissions import Actor
from services.users.domain.provisioning import may_inherit
from services.users.domain.status_policy import POLICY, policy_of, statuses_where
from services.users.domain.teams import Membership, TeamRole
from services.users.domain.work import holder_problem
from services.users.scim.resources import user_resource

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
TEAM = "t1"


def _user(status: UserStatus) -> User:
    return User(
        id="u1",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        status=status,
        license=License.PRACTITIONER,
        create_time=NOW,
        update_time=NOW,
        memberships=[Membership(TEAM, TeamRole.MEMBER)],
    )


ROLE = Role("csm", "CSM", "", RoleSource.EDITABLE, EmptyValue.KEEP_EXISTING, True, NOW, NOW)


def test_every_status_has_exactly_one_entry():
    assert set(POLICY) == set(UserStatus)
    assert all(policy_of(status) is POLICY[status] for status in UserStatus)


def test_a_status_without_an_entry_fails_the_import():
    partial: dict[UserStatus, status_policy.StatusPolicy] = {
        s: p for s, p in POLICY.items() if s is not UserStatus.DELETED
    }
    with pytest.raises(RuntimeError, match="DELETED"):
        status_policy._every_status(partial)


def test_the_table_is_frozen():
    with pytest.raises(TypeError):
        POLICY[UserStatus.ACTIVE] = POLICY[UserStatus.DELETED]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY[UserStatus.ACTIVE].holds_seat = False  # type: ignore[misc]


def test_the_product_rules():
    """The reference's statuses: only CREATED and ACTIVE count toward seats; deleted users leave
    lists; only accepted (ACTIVE) users sign in; integrations may assign invited users, people
    and plays only active ones."""
    assert statuses_where(lambda p: p.holds_seat) == {UserStatus.CREATED, UserStatus.ACTIVE}
    assert statuses_where(lambda p: not p.is_listed) == {UserStatus.DELETED}
    assert statuses_where(lambda p: p.may_log_in) == {UserStatus.ACTIVE}
    assert statuses_where(lambda p: p.enabled) == {UserStatus.CREATED, UserStatus.ACTIVE}
    assert {s: p.role_sources for s, p in POLICY.items() if p.role_sources} == {
        UserStatus.ACTIVE: frozenset(Source),
        UserStatus.CREATED: frozenset({Source.INTEGRATION, Source.REASSIGNMENT}),
    }


@pytest.mark.parametrize("status", list(UserStatus))
def test_the_capabilities_agree_with_each_other(status):
    policy = policy_of(status)
    if policy.role_sources or policy.holds_seat or policy.may_log_in:
        assert policy.enabled  # whoever may hold anything may be handed work
    if policy.enabled:
        assert policy.is_listed
    if policy.may_log_in:
        assert policy.role_sources == frozenset(Source)


def test_seats_are_what_licenses_count_and_what_the_lifecycle_gains():
    counted = {s for s in UserStatus if LicensePolicy().counts(s, "ada@example.com")}
    assert counted == statuses_where(lambda p: p.holds_seat)
    assert not any(
        LicensePolicy(exempt_domains=frozenset({"example.com"})).counts(s, "a@example.com") for s in UserStatus
    )
    for (before, _), after in TRANSITIONS.items():
        assert gains_seat(before, after) == (not policy_of(before).holds_seat and policy_of(after).holds_seat)


@pytest.mark.parametrize(("status", "source"), list(itertools.product(UserStatus, Source)))
def test_a_role_may_be_held_exactly_as_the_table_says(status, source):
    write = WriteSource(source, "ref", TEAM if source is Source.PLAY else None)
    try:
        ensure_eligible(_user(status), ROLE, write)
        eligible = True
    except FailedPrecondition as refused:
        eligible = False
        expected = "USER_NOT_ELIGIBLE" if not policy_of(status).role_sources else "USER_NOT_ACTIVE"
        assert refused.reason == expected
    assert eligible == policy_of(status).may_hold_role(source)


@pytest.mark.parametrize("status", list(UserStatus))
def test_work_sign_in_scim_and_the_api_read_the_table(status):
    policy = policy_of(status)
    assert (holder_problem("u1", status, "be assigned tasks") is None) == policy.enabled
    assert may_inherit(_user(status)) == policy.enabled
    assert user_resource(_user(status), ScimIdentity("u1", "ada@example.com"))["active"] == policy.enabled
    try:
        Actor.for_user(_user(status))
        signs_in = True
    except PermissionDenied:
        signs_in = False
    assert signs_in == policy.may_log_in
    sent = convert.user_to_proto(_user(status)).status_policy
    assert (sent.holds_seat, sent.listed, sent.may_log_in, sent.enabled) == (
        policy.holds_seat,
        policy.is_listed,
        policy.may_log_in,
        policy.enabled,
    )


def test_the_unique_email_index_covers_the_listed_users():
    """One listed user per email: the partial index's predicate (fixed by a migration) must
    leave out exactly the statuses the table does not list."""
    (index,) = [i for i in table_of(UserRecord).indexes if i.name == "uq_users_live_email"]
    unlisted = sorted(s.value for s in statuses_where(lambda p: not p.is_listed))
    expected = " AND ".join(f"status != '{value}'" for value in unlisted)
    assert str(index.dialect_options["postgresql"]["where"]) == expected
    assert str(index.dialect_options["sqlite"]["where"]) == expected
