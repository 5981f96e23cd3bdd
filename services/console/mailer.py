"""Sends the sign-in link emails over SMTP (STEWARD_SMTP_*), off the request thread so that the
time a sign-in request takes does not tell whether the address belongs to someone."""

from __future__ import annotations

import smtplib
import threading
from email.message import EmailMessage

from services.console.config import SmtpOut
from services.runtime.logging import get_logger

log = get_logger("steward.console.mail")


class Mailer:
    def __init__(self, smtp: SmtpOut) -> None:
        self._smtp = smtp

    @property
    def enabled(self) -> bool:
        return bool(self._smtp.host)

    def send_later(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self._smtp.sender, to, subject
        message.set_content(body)
        threading.Thread(target=self._send, args=(message,), name="console-mail", daemon=True).start()

    def _send(self, message: EmailMessage) -> None:
        if not self.enabled:
            log.warning("mail_not_sent", reason="STEWARD_SMTP_HOST is not set", subject=message["Subject"])
            return
        try:
            with smtplib.SMTP(self._smtp.host, self._smtp.port, timeout=10) as client:
                client.send_message(message)
            log.info("mail_sent", subject=message["Subject"])
        except (OSError, smtplib.SMTPException) as error:
            log.error("mail_failed", subject=message["Subject"], error=str(error))
