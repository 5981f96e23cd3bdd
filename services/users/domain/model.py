"""A user of Steward: identity, status, license and profile, and who may change what."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.runtime.auth import Principal
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied, Violations
from services.runtime.etag import make_etag
from services.users.domain.teams import Membership


class UserStatus(StrEnum):
    CREATED = "CREATED"
    ACTIVE = "ACTIVE"
    DISABLED = "DISABLED"
    CREATED_DISABLED = "CREATED_DISABLED"
    DELETED = "DELETED"


class License(StrEnum):
    PRACTITIONER = "PRACTITIONER"
    CONTRIBUTOR = "CONTRIBUTOR"
    VIEWER = "VIEWER"


# Deliberately simple: a single @, no spaces, a dot in the domain. Deliverability is the SMTP server's job.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
MAX_NAME = 100
MAX_SIGNATURE = 4000
MAX_ATTRIBUTE_VALUE = 2000
MAX_ATTRIBUTES = 200
MAX_ALTERNATIVE_EMAILS = 20

PROFILE_FIELDS = frozenset({"first_name", "last_name", "signature", "alternative_emails", "custom_attributes"})


def normalize_email(email: str) -> str:
    return email.strip().lower()


def is_valid_email(email: str) -> bool:
    return len(email) <= 254 and bool(_EMAIL.match(email))


def user_not_found(user_id: str) -> NotFound:
    return NotFound("USER_NOT_FOUND", f"no user users/{user_id}", metadata={"user": f"users/{user_id}"})


@dataclass
class User:
    id: str
    email: str
    first_name: str
    last_name: str
    status: UserStatus
    license: License
    create_time: dt.datetime
    update_time: dt.datetime
    global_admin: bool = False
    manager_id: str | None = None
    alternative_emails: list[str] = field(default_factory=list)
    custom_attributes: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    last_activity_time: dt.datetime | None = None
    user_management: bool = False
    memberships: list[Membership] = field(default_factory=list)
    version: int = 1

    @property
    def etag(self) -> str:
        return make_etag(self.id, self.version)

    @property
    def team_ids(self) -> frozenset[str]:
        return frozenset(m.team_id for m in self.memberships)

    def record_activity(self, now: dt.datetime) -> None:
        """Something was done by or for this user (e.g. a play they own created a task). Recorded
        whatever their status: it is a fact about the past, not a permission. Nothing else changes."""
        self.last_activity_time = now

    def ensure_editable(self) -> None:
        if self.status is UserStatus.DELETED:
            raise FailedPrecondition(
                "USER_DELETED", "a deleted user cannot be edited", metadata={"user": f"users/{self.id}"}
            )

    def change_license(self, new: License) -> None:
        """Practitioner and contributor seats cannot become viewer seats: delete and re-invite instead."""
        if new is License.VIEWER and self.license is not License.VIEWER:
            raise FailedPrecondition(
                "LICENSE_DOWNGRADE_NOT_ALLOWED",
                f"a {self.license.value} cannot become a VIEWER; delete the user (reassigning what they own) "
                "and invite them again as a VIEWER",
                metadata={"user": f"users/{self.id}", "license": self.license.value},
            )
        self.license = new

    def change_email(self, new_email: str, uuid_mode: bool) -> None:
        """The email is the login; only installations in UUID mode may change it (the id stays)."""
        if not uuid_mode:
            raise FailedPrecondition(
                "EMAIL_IMMUTABLE",
                "email cannot be changed unless UUID mode is enabled",
                metadata={"user": f"users/{self.id}"},
            )
        email = new_email.strip()
        if not is_valid_email(normalize_email(email)):
            problems = Violations()
            problems.add("user.email", f"{new_email!r} is not an email address", "EMAIL_INVALID")
            problems.raise_if_any()
        self.email = email

    def update_profile(self, changes: dict[str, Any], now: dt.datetime) -> None:
        """Apply profile edits after checking every one of them; nothing changes if one is bad."""
        self.ensure_editable()
        problems = Violations()
        unknown = set(changes) - PROFILE_FIELDS
        for path in sorted(unknown):
            problems.add(path, "is not a profile field", "FIELD_NOT_UPDATABLE")
        for name in ("first_name", "last_name"):
            if name in changes:
                _check_text(problems, name, changes[name], MAX_NAME)
        if "signature" in changes:
            _check_text(problems, "signature", changes["signature"], MAX_SIGNATURE, multiline=True)
        if "alternative_emails" in changes:
            changes["alternative_emails"] = self._check_alternative_emails(problems, changes["alternative_emails"])
        if "custom_attributes" in changes:
            _check_attributes(problems, changes["custom_attributes"])
        problems.raise_if_any("invalid profile")
        for name, value in changes.items():
            setattr(self, name, value)
        self.update_time = now

    def _check_alternative_emails(self, problems: Violations, emails: list[str]) -> list[str]:
        if len(emails) > MAX_ALTERNATIVE_EMAILS:
            problems.add("alternative_emails", f"at most {MAX_ALTERNATIVE_EMAILS} addresses")
        cleaned: list[str] = []
        for i, raw in enumerate(emails):
            email = normalize_email(raw)
            if not is_valid_email(email):
                problems.add(f"alternative_emails[{i}]", f"{raw!r} is not an email address", "EMAIL_INVALID")
            elif email == normalize_email(self.email):
                problems.add(f"alternative_emails[{i}]", "is the user's login email", "EMAIL_DUPLICATE")
            elif email in cleaned:
                problems.add(f"alternative_emails[{i}]", "appears twice", "EMAIL_DUPLICATE")
            else:
                cleaned.append(email)
        return cleaned


def _check_text(problems: Violations, name: str, value: str, limit: int, multiline: bool = False) -> None:
    if len(value) > limit:
        problems.add(name, f"at most {limit} characters", "TOO_LONG")
    allowed_controls = "\n\r\t" if multiline else ""
    if any(ord(c) < 32 and c not in allowed_controls for c in value):
        problems.add(name, "must not contain control characters", "INVALID_CHARACTERS")


def _check_attributes(problems: Violations, attributes: dict[str, str]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        problems.add("custom_attributes", f"at most {MAX_ATTRIBUTES} attributes")
    for key, value in attributes.items():
        if not _ATTRIBUTE_KEY.match(key):
            problems.add(
                f"custom_attributes[{key!r}]",
                "keys start with a letter or _ and hold letters, digits, _ . - (64 at most)",
                "ATTRIBUTE_KEY_INVALID",
            )
        if len(value) > MAX_ATTRIBUTE_VALUE:
            problems.add(f"custom_attributes[{key!r}]", f"at most {MAX_ATTRIBUTE_VALUE} characters", "TOO_LONG")


def ensure_can_edit_profile(actor: Principal, user: User) -> None:
    """Admins edit anyone's profile; everyone else only their own."""
    if actor.is_admin or actor.subject == user.id:
        return
    raise PermissionDenied(
        "NOT_ALLOWED",
        "only an admin or the user themself may edit this profile",
        metadata={"user": f"users/{user.id}", "actor": actor.subject},
    )


def ensure_visible(user: User | None, user_id: str) -> User:
    if user is None:
        raise user_not_found(user_id)
    return user
