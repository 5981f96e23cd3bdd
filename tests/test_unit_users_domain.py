"""Pure users-domain rules: profile edits and who may make them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from services.runtime.auth import Principal
from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.users.domain.model import License, User, UserStatus, ensure_can_edit_profile

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _user(**kw: Any) -> User:
    base: dict[str, Any] = dict(
        id="u1",
        email="Ada@Example.com",
        first_name="Ada",
        last_name="L",
        status=UserStatus.ACTIVE,
        license=License.PRACTITIONER,
        create_time=NOW,
        update_time=NOW,
    )
    return User(**(base | kw))


def test_profile_update_applies_and_stamps_time():
    user = _user()
    later = NOW + dt.timedelta(hours=1)
    user.update_profile({"first_name": "Augusta", "custom_attributes": {"tier": "gold"}}, later)
    assert (user.first_name, user.custom_attributes, user.update_time) == ("Augusta", {"tier": "gold"}, later)


def test_alternative_emails_are_normalised_and_deduplicated_against_login():
    user = _user()
    with pytest.raises(InvalidArgument) as err:
        user.update_profile({"alternative_emails": ["a@x.io", "A@X.io", "ada@example.com"]}, NOW)
    assert [v.field for v in err.value.field_violations] == ["alternative_emails[1]", "alternative_emails[2]"]
    user.update_profile({"alternative_emails": [" Work@Example.org "]}, NOW)
    assert user.alternative_emails == ["work@example.org"]


def test_bad_edit_changes_nothing():
    user = _user()
    with pytest.raises(InvalidArgument):
        user.update_profile({"first_name": "ok", "last_name": "bad\x00name"}, NOW)
    assert user.first_name == "Ada"


def test_attribute_keys_are_checked():
    with pytest.raises(InvalidArgument) as err:
        _user().update_profile({"custom_attributes": {"1bad": "x", "good_key": "y" * 2001}}, NOW)
    assert len(err.value.field_violations) == 2


def test_signature_may_span_lines_but_names_may_not():
    user = _user()
    user.update_profile({"signature": "Best,\nAda"}, NOW)
    with pytest.raises(InvalidArgument):
        user.update_profile({"first_name": "A\nda"}, NOW)


def test_deleted_user_profile_is_frozen():
    with pytest.raises(FailedPrecondition):
        _user(status=UserStatus.DELETED).update_profile({"first_name": "x"}, NOW)


def test_only_admins_or_the_user_edit_a_profile():
    user = _user()
    ensure_can_edit_profile(Principal("u1"), user)
    ensure_can_edit_profile(Principal("someone", roles=frozenset({"admin"})), user)
    with pytest.raises(PermissionDenied):
        ensure_can_edit_profile(Principal("u2"), user)
