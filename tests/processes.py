"""Service processes for tests that need real signals: free ports, output capture, waiting."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from services.cli.health_probe import is_serving

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A child process whose stdout and stderr lines are collected as they arrive."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path | str = ROOT) -> None:
        """`cwd`: the checkout to run in (this one; bench/tracing.py runs an older one)."""
        self.popen = subprocess.Popen(
            args, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            for stream, sink in ((self.popen.stdout, self.stdout), (self.popen.stderr, self.stderr))
        ]
        for pump in self._pumps:
            pump.start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[], bool], seconds: float = 30, what: str = "condition") -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if self.popen.poll() is not None and not predicate():
                raise AssertionError(f"process exited ({self.popen.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the exit and for every line of its output; returns the exit code."""
        code = self.popen.wait(timeout=timeout)
        for pump in self._pumps:
            pump.join(timeout)
        return code

    def output(self) -> str:
        return "\n".join(["--- stdout", *self.stdout[-40:], "--- stderr", *self.stderr[-40:]])

    def close(self) -> None:
        """Kill it if it still runs (it is not a process group leader: kill the process itself)."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.kill()
        self.popen.wait(timeout=10)


def python_module(module: str, *args: str, env: dict[str, str]) -> Process:
    return Process([sys.executable, "-m", module, *args], env)


def users_process(database_url: str, secret: str, port: int = 0, **env: str) -> tuple[Process, str]:
    """A users service process on its own port (or `port`, e.g. to restart one where it was),
    migrating its database on start; returns it and its address."""
    port = port or free_port()
    process = python_module(
        "services.users",
        "serve",
        env={
            "STEWARD_JWT_SECRET": secret,
            "STEWARD_USERS_DATABASE_URL": database_url,
            "STEWARD_USERS_PORT": str(port),
            "STEWARD_USERS_METRICS_PORT": "-1",
            "STEWARD_USERS_SCIM_PORT": "0",
            "STEWARD_MIGRATE_ON_START": "true",
            **env,
        },
    )
    address = f"127.0.0.1:{port}"
    process.wait_for(lambda: is_serving(address), what="SERVING")
    return process, address


def rules_process(database_url: str, secret: str, users_address: str, **env: str) -> tuple[Process, str]:
    """A rules service process on its own port, talking to the users service at users_address."""
    port = free_port()
    process = python_module(
        "services.rules",
        "serve",
        env={
            "STEWARD_JWT_SECRET": secret,
            "STEWARD_RULES_DATABASE_URL": database_url,
            "STEWARD_RULES_PORT": str(port),
            "STEWARD_RULES_METRICS_PORT": "-1",
            "STEWARD_USERS_ADDRESS": users_address,
            "STEWARD_MIGRATE_ON_START": "true",
            **env,
        },
    )
    address = f"127.0.0.1:{port}"
    process.wait_for(lambda: is_serving(address), what="SERVING")
    return process, address
