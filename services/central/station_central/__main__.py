"""``station-central`` (``python -m station_central``), configured by ``STATION_CENTRAL_*``.

``serve`` (the default) runs the central server. ``failover``, ``rejoin`` and
``replication`` act on its PostgreSQL servers (see :mod:`station_central.failover`) and
print what they did as JSON on stdout; they exit 1 with the reason on stderr when they
cannot.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from station_central.core.config import SERVICE, Settings
from station_central.failover import FailoverError, apply_replication, failover, rejoin


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="station-central",
        description="The central server of the stations' records, and its database failover.",
    )
    commands = root.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the central server (the default)")
    promote = commands.add_parser(
        "failover",
        help="promote the standby once the primary is gone; central follows it",
    )
    promote.add_argument("--timeout", type=float, default=60, help="seconds to wait (60)")
    back = commands.add_parser(
        "rejoin", help="make the stopped old primary a standby of the new one"
    )
    back.add_argument("--pgdata", type=Path, required=True, help="the old primary's data dir")
    back.add_argument("--pg-bin", type=Path, help="where pg_rewind and pg_basebackup are")
    back.add_argument("--basebackup", action="store_true", help="copy afresh instead of pg_rewind")
    mode = commands.add_parser(
        "replication",
        help="set synchronous_standby_names on the primary for STATION_CENTRAL_REPLICATION",
    )
    mode.add_argument(
        "--wait", type=float, default=0, help="seconds to wait for the standby to stream (0)"
    )
    return root


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parser().parse_args(argv)
    settings = Settings()
    if arguments.command in (None, "serve"):
        _serve(settings)
        return
    try:
        report = _admin(arguments, settings)
    except FailoverError as exc:
        sys.stderr.write(f"station-central {arguments.command}: {exc}\n")
        raise SystemExit(1) from None
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


def _admin(arguments: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    if arguments.command == "failover":
        return failover(settings, arguments.timeout)
    if arguments.command == "rejoin":
        return rejoin(settings, arguments.pgdata, arguments.pg_bin, arguments.basebackup)
    return apply_replication(settings, arguments.wait)


def _serve(settings: Settings) -> None:
    # Imported here: the admin commands need neither uvicorn nor the app.
    from station_central.main import create_app
    from station_runtime.serve import serve

    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
