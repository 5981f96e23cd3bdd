"""The console's HTTP server: waitress (as SCIM in the users service), started on its port and
closed on SIGTERM/SIGINT after the requests in flight finish."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from waitress import wasyncore
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from services.console.app import create_app
from services.console.config import ConsoleConfig
from services.console.sessions import Clock
from services.runtime.logging import get_logger
from services.runtime.server import serve_until_signalled

log = get_logger("steward.console")


class ConsoleServer:
    def __init__(self, config: ConsoleConfig, clock: Clock = time.time) -> None:
        self.config = config
        self.app = create_app(config, clock)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    def start(self) -> None:
        # Threads started once the port is bound: a port already taken leaves none running.
        dispatcher = ThreadedTaskDispatcher()
        self._server = create_server(
            self.app,
            _dispatcher=dispatcher,
            host=self.config.host,
            port=self.config.port,
            threads=self.config.threads,
            ident="steward-console",
            clear_untrusted_proxy_headers=True,
            channel_timeout=60,
        )
        dispatcher.set_thread_count(self.config.threads)
        self.port = int(self._server.effective_port)
        self._thread = threading.Thread(target=self._serve, name="console-http", daemon=True)
        self._thread.start()
        log.info("serving", url=self.url, public_url=self.config.public_url, users=self.config.users_address)

    def _serve(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the sockets closed under the loop while stopping
            self._server.run()

    def stop(self, timeout: float | None = None) -> None:
        if self._server is None:
            return
        grace = self.config.grace_seconds if timeout is None else timeout
        self._server.close()  # no new connections
        self._server.task_dispatcher.shutdown(cancel_pending=False, timeout=grace)
        wasyncore.close_all(self._server._map)
        if self._thread is not None:
            self._thread.join(grace)
        self.app.extensions["steward_console"].gateway.close()
        self._server = None
        log.info("stopped")

    def serve_until_signalled(self) -> int:
        return serve_until_signalled(self.start, self.stop)
