"""Delivers the notification outbox over SMTP: at least once, with retries and back-off.

A row is marked sent only after the SMTP server accepted it, so a crash between commit and
send (or during the send) leads to a later delivery, never to none. Rows are claimed with a
lease, so two replicas do not send the same email at the same time.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from services.runtime.db import Database, utcnow
from services.runtime.logging import get_logger
from services.users.config import SmtpSettings
from services.users.unit_of_work import UsersUnitOfWork

log = get_logger("steward.users.email")
LEASE = dt.timedelta(seconds=60)
BATCH = 50
MAX_BACKOFF = dt.timedelta(hours=1)


@dataclass(frozen=True)
class _Pending:
    id: str
    recipient: str
    subject: str
    body: str
    attempts: int


def backoff(attempts: int, base_seconds: float) -> dt.timedelta:
    """base, 2 x base, 4 x base ... capped at an hour."""
    return min(dt.timedelta(seconds=base_seconds * 2 ** max(attempts - 1, 0)), MAX_BACKOFF)


class EmailSender:
    def __init__(self, db: Database, smtp: SmtpSettings, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._db = db
        self._smtp = smtp
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._smtp.enabled:
            log.warning("email_disabled", reason="STEWARD_SMTP_HOST is not set; emails stay queued")
            return
        self._thread = threading.Thread(target=self._loop, name="users-email", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.send_due()
            except Exception as exc:  # the loop must survive a bad moment of the database
                log.error("email_loop_failed", exc_info=exc)
                sent = 0
            if not sent:
                self._stop.wait(self._smtp.poll_seconds)

    def _claim(self) -> list[_Pending]:
        now = self._clock()
        with UsersUnitOfWork(self._db) as uow:
            rows = uow.outbox.claim_due(now, now + LEASE, BATCH)
            pending = [_Pending(r.id, r.recipient, r.subject, r.body, r.attempts) for r in rows]
            uow.commit()
        return pending

    def send_due(self) -> int:
        """Send one batch of due emails; returns how many the SMTP server accepted."""
        pending = self._claim()
        if not pending:
            return 0
        errors: dict[str, str] = {}
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=0.2, max=2),
                retry=retry_if_exception_type(OSError),
                reraise=True,
            ):
                with attempt, smtplib.SMTP(self._smtp.host, self._smtp.port, timeout=10) as client:
                    errors = {}
                    for item in pending:
                        try:
                            client.send_message(self._message(item))
                        except smtplib.SMTPException as exc:  # this recipient only
                            errors[item.id] = f"{type(exc).__name__}: {exc}"
        except (OSError, smtplib.SMTPException) as exc:  # no server: the whole batch waits
            errors = {item.id: f"{type(exc).__name__}: {exc}" for item in pending}
        self._record(pending, errors)
        return len(pending) - len(errors)

    def _message(self, item: _Pending) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = item.recipient
        message["Subject"] = item.subject
        message["Message-ID"] = f"<{item.id}@steward>"  # lets a receiver drop a duplicate delivery
        message.set_content(item.body)
        return message

    def _record(self, pending: list[_Pending], errors: dict[str, str]) -> None:
        now = self._clock()
        with UsersUnitOfWork(self._db) as uow:
            for item in pending:
                error = errors.get(item.id)
                if error is None:
                    uow.outbox.mark_sent(item.id, now)
                    continue
                attempts = item.attempts + 1
                give_up = attempts >= self._smtp.max_attempts
                uow.outbox.mark_failed_attempt(
                    item.id,
                    attempts,
                    None if give_up else now + backoff(attempts, self._smtp.retry_base_seconds),
                    error,
                )
                (log.error if give_up else log.warning)(
                    "email_not_sent", notification=item.id, attempts=attempts, error=error, gave_up=give_up
                )
            uow.commit()
        if len(errors) < len(pending):
            log.info("emails_sent", count=len(pending) - len(errors))
