"""`python -m tools.oidc_standin --email you@example.com`: a development OIDC provider that signs
everyone in as that address, until stopped (Ctrl-C)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from tools.oidc_standin.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OidcStandin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.oidc_standin", description=__doc__)
    parser.add_argument("--email", required=True, help="who /authorize signs in (POST /__standin/settings changes it)")
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--redirect-uri", default="http://localhost:8080/signin/oidc/callback", help="the console's callback"
    )
    args = parser.parse_args(argv)
    standin = OidcStandin(
        email=args.email,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=(args.redirect_uri,),
        port=args.port,
    ).start()
    print(f"OIDC stand-in (development only) at {standin.issuer}, signing in {args.email}", flush=True)
    print(f"  STEWARD_CONSOLE_OIDC_ISSUER={standin.issuer}")
    print(f"  STEWARD_CONSOLE_OIDC_CLIENT_ID={args.client_id}")
    print(f"  STEWARD_CONSOLE_OIDC_CLIENT_SECRET={args.client_secret}", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stop.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
