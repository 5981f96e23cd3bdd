"""`python -m tools.salesforce_standin --port P --rows N --seed S`: serve a generated org until stopped."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from types import FrameType

from tools.salesforce_standin.org import Org, generate, generate_account_teams, generate_rows
from tools.salesforce_standin.server import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_USERNAME,
    Emulator,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.salesforce_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--rows", type=int, default=None, help="about this many AccountUserTerritory2View rows")
    parser.add_argument("--accounts", type=int, default=200, help="ignored with --rows")
    parser.add_argument("--users", type=int, default=60, help="ignored with --rows")
    parser.add_argument("--territories", type=int, default=12, help="ignored with --rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--team-members", type=int, default=3, help="at most this many AccountTeamMember rows per account (0: none)"
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--username", default=DEFAULT_USERNAME, help="the `sub` a jwt-bearer assertion must carry")
    parser.add_argument("--json", action="store_true", help="print one JSON line (for scripts) instead of text")
    args = parser.parse_args(argv)

    started = time.monotonic()
    org = Org()
    if args.rows is not None:
        summary = generate_rows(org, args.rows, seed=args.seed)
    else:
        summary = generate(org, accounts=args.accounts, users=args.users, territories=args.territories, seed=args.seed)
    team_rows = 0
    if args.team_members > 0:
        team_rows = generate_account_teams(org, members=(1, args.team_members), seed=args.seed)
    emulator = Emulator(
        org,
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        username=args.username,
    ).start()
    info = {
        **emulator.info(),
        "view_rows": summary.view_rows,
        "team_rows": team_rows,
        "generated_seconds": round(time.monotonic() - started, 2),
    }
    if args.json:
        print(json.dumps(info), flush=True)
    else:
        print(f"Salesforce emulator listening on {emulator.url}", flush=True)
        print(f"  token endpoint  POST {emulator.token_url}")
        print(f"  client_id       {emulator.client_id}")
        print(f"  client_secret   {emulator.client_secret}")
        print(f"  username (jwt)  {emulator.username}")
        print(
            f"  org             {summary.accounts} accounts, {summary.users} users, {summary.territories} territories,"
            f" {summary.view_rows} AccountUserTerritory2View rows, {team_rows} AccountTeamMember rows"
            f" (seed {args.seed},"
            f" built in {info['generated_seconds']}s)"
        )
        print(f"  controls        {emulator.url}/__emulator/  (Ctrl-C stops)", flush=True)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
