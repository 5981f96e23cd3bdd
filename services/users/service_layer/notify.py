"""Queue the emails that go with lifecycle changes (sent later by the outbox sender)."""

from __future__ import annotations

import datetime as dt

from services.users.config import UsersConfig
from services.users.domain.invitations import Invitation, new_token, token_hash
from services.users.domain.model import User
from services.users.domain.notifications import Email, invitation_email
from services.users.unit_of_work import UsersUnitOfWork


def send_invitation(uow: UsersUnitOfWork, config: UsersConfig, user: User, now: dt.datetime) -> Invitation:
    """A fresh single-use token replaces any earlier one; the email carrying it goes to the outbox."""
    uow.invitations.revoke_open([user.id])
    token = new_token()
    invitation = Invitation(token_hash(token), user.id, now, now + dt.timedelta(hours=config.invitation_ttl_hours))
    uow.invitations.add(invitation)
    url = config.accept_url_template.format(token=token)
    uow.outbox.add(invitation_email(user.email, url, invitation.expire_time), now)
    return invitation


def queue(uow: UsersUnitOfWork, email: Email | None, now: dt.datetime) -> None:
    if email is not None:
        uow.outbox.add(email, now)
