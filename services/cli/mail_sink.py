"""A local SMTP server for development (`make run`): keeps every message as a .eml file."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from rich.console import Console

console = Console(stderr=True)


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        path = self.folder / f"{self.count:05d}.eml"
        path.write_bytes(envelope.content)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        console.print(f"[cyan]mail[/cyan] to {', '.join(envelope.rcpt_tos)}: {message['Subject']}  ({path})")
        return "250 Message accepted for delivery"


def start_mail_sink(folder: Path, host: str, port: int) -> Controller:
    folder.mkdir(parents=True, exist_ok=True)
    handler = _SaveToFolder(folder)
    handler.count = len(list(folder.glob("*.eml")))
    controller = Controller(handler, hostname=host, port=port)
    controller.start()
    return controller
