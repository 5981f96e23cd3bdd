"""`steward dev` (what `make run` runs): the three services and the web console as child processes,
stopped together."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from services.cli.client import DEV_ADMIN_EMAIL
from services.cli.health_probe import is_serving
from services.cli.mail_sink import start_mail_sink
from services.cli.secrets import jwt_secret, sealing_keys
from services.console.config import DEFAULT_CONSOLE_PORT
from services.runtime.auth import mint_token
from services.runtime.config import service_address
from services.users.config import DEFAULT_SCIM_PORT
from services.users.service_layer.bootstrap import bootstrap_admin_id

SERVICES = ("users", "rules", "sync")
DEV_SMTP_PORT = 2525
console = Console(stderr=True)


# Looked up once here: a preexec function runs between fork and exec, where little is safe.
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6") if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """If this runner is killed outright (no chance to stop them), the services get SIGTERM too."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def run_all(startup_timeout: float = 60.0) -> int:
    secret = jwt_secret(create=True)
    env = {**os.environ, "STEWARD_JWT_SECRET": secret or "", "STEWARD_SECRETS_KEYS": sealing_keys(create=True) or ""}
    env.setdefault("STEWARD_BOOTSTRAP_ADMIN_EMAIL", DEV_ADMIN_EMAIL)
    sink = None
    mail_folder: Path | None = None
    if not env.get("STEWARD_SMTP_HOST"):
        # No mail server configured: run a local one so invitations can be read in ./var/mail.
        port = int(env.get("STEWARD_SMTP_PORT") or DEV_SMTP_PORT)
        mail_folder = Path(env.get("STEWARD_DATA_DIR", "./var")) / "mail"
        sink = start_mail_sink(mail_folder, "127.0.0.1", port)
        env |= {"STEWARD_SMTP_HOST": "127.0.0.1", "STEWARD_SMTP_PORT": str(port)}
    console_port = int(env.get("STEWARD_CONSOLE_PORT") or DEFAULT_CONSOLE_PORT)
    env.setdefault("STEWARD_CONSOLE_PUBLIC_URL", f"http://localhost:{console_port}")
    # Invitation emails link to this console's accept page.
    accept = env["STEWARD_CONSOLE_PUBLIC_URL"] + "/accept-invitation?token={token}"
    env.setdefault("STEWARD_ACCEPT_URL_TEMPLATE", accept)
    children = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"services.{name}", "serve"], env=env, preexec_fn=_die_with_parent
        )
        for name in (*SERVICES, "console")
    }
    ready: dict[str, Callable[[], bool]] = {
        **{name: functools.partial(is_serving, service_address(name)) for name in SERVICES},
        "console": functools.partial(_http_ok, f"http://127.0.0.1:{console_port}/healthz"),
    }
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        result = _supervise(
            children,
            ready,
            stop,
            startup_timeout,
            lambda: _banner(
                secret or "", env["STEWARD_BOOTSTRAP_ADMIN_EMAIL"], mail_folder, env["STEWARD_CONSOLE_PUBLIC_URL"]
            ),
        )
    finally:
        clean = _stop_all(children)
        if sink is not None:
            sink.stop()
    return result if clean else 1


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as reply:
            return bool(reply.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _supervise(
    children: dict[str, subprocess.Popen[bytes]],
    ready: dict[str, Callable[[], bool]],
    stop: threading.Event,
    startup_timeout: float,
    banner: Callable[[], None],
) -> int:
    """Wait until every service is SERVING (the console: /healthz answers), then until Ctrl-C (0)
    or a service dies (1)."""
    deadline = time.monotonic() + startup_timeout
    pending = set(children)
    while pending and not stop.is_set():
        for name in sorted(pending):
            if children[name].poll() is not None:
                console.print(f"[red]{name} exited during start-up (code {children[name].returncode})[/red]")
                return 1
            if ready[name]():
                pending.discard(name)
        if time.monotonic() > deadline:
            console.print(f"[red]not healthy after {startup_timeout:.0f}s: {', '.join(sorted(pending))}[/red]")
            return 1
        stop.wait(0.2)
    if not stop.is_set():
        banner()
    while not stop.wait(0.5):
        exited = [n for n, p in children.items() if p.poll() is not None]
        if exited:
            console.print(f"[red]{', '.join(exited)} stopped unexpectedly; stopping the others[/red]")
            return 1
    return 0


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """SIGTERM each service and wait for its drain; False if one had to be killed or failed."""
    for process in children.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    clean = True
    for name, process in children.items():
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]{name} did not stop in 30s; killing it[/yellow]")
            process.kill()
            process.wait()
            clean = False
            continue
        if code not in (0, -signal.SIGTERM, -signal.SIGINT):  # killed by a signal before its handler was set: fine
            console.print(f"[yellow]{name} exited with code {code}[/yellow]")
            clean = False
    console.print("all services stopped" if clean else "services stopped, not all cleanly")
    return clean


def scim_base_url() -> str:
    """Where the users service serves SCIM, or "" when it is off (STEWARD_USERS_SCIM_PORT=-1)."""
    port = os.environ.get("STEWARD_USERS_SCIM_PORT") or str(DEFAULT_SCIM_PORT)
    host = os.environ.get("STEWARD_USERS_HOST") or os.environ.get("STEWARD_HOST") or "127.0.0.1"
    return "" if port.strip() == "-1" else f"http://{host}:{port.strip()}/scim/v2"


def _banner(secret: str, admin_email: str, mail_folder: Path | None, console_url: str) -> None:
    token = mint_token(secret, bootstrap_admin_id(admin_email), ttl_seconds=12 * 3600)
    users = service_address("users")
    scim = scim_base_url()
    lines = [
        "",
        "Steward is running (Ctrl-C stops all of it)",
        *(f"  {name:<6} {service_address(name)}" for name in SERVICES),
        f"  console {console_url} (web console; sign in as {admin_email} by the emailed link)",
        *([f"  scim   {scim} (SCIM 2.0 for identity providers)"] if scim else []),
        *([f"  mail   {mail_folder} (local SMTP sink)"] if mail_folder else []),
        "",
        f"Token of the global admin {admin_email} (12 h), for your shell:",
        f"export STEWARD_TOKEN={token}",
        "",
        "Try it:",
        f'grpcurl -plaintext -H "authorization: Bearer $STEWARD_TOKEN" {users} steward.users.v1.UserService/ListUsers',
        ".venv/bin/steward health",
        *(
            [
                f'curl -H "authorization: Bearer $(.venv/bin/steward token --sub service:okta --scope users.scim)" '
                f"{scim}/Users"
            ]
            if scim
            else []
        ),
        "",
    ]
    # Plain print, one flush: the services' JSON logs share this terminal and must not split the banner.
    print("\n".join(lines), flush=True)
