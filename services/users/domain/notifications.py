"""The emails the users service sends, as plain text."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Email:
    kind: str
    to: str
    subject: str
    body: str


def invitation_email(to: str, accept_url: str, expire_time: dt.datetime) -> Email:
    return Email(
        kind="INVITATION",
        to=to,
        subject="You are invited to Steward",
        body=(
            "You have been invited to Steward, where your team keeps track of who owns which customer account.\n\n"
            f"Accept the invitation and set up your profile:\n{accept_url}\n\n"
            f"The link works once, until {expire_time:%Y-%m-%d %H:%M} UTC.\n"
        ),
    )


def access_disabled_email(to: str) -> Email:
    return Email(
        kind="ACCESS_DISABLED",
        to=to,
        subject="Your Steward access was disabled",
        body="An administrator disabled your access to Steward. Your profile is kept.\n",
    )


def access_enabled_email(to: str) -> Email:
    return Email(
        kind="ACCESS_ENABLED",
        to=to,
        subject="Your Steward access was re-enabled",
        body="An administrator re-enabled your access to Steward. Welcome back.\n",
    )
