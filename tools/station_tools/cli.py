"""``station``: run the station on this machine and act at its simulated piles.

``station up`` starts everything (see :mod:`station_tools.launcher`); ``station pile ...``
plays the driver at a pile of the running simulator (and ``station pile join`` the
technician pairing a new pile with a charger); ``station down`` stops a station
started in another terminal; ``station sync token`` installs the station's token for central
(read from standard input) after central rotated it, without a restart or losing a record;
``station backup`` and ``station restore`` copy every station database into one file while
the station runs and put it back into an empty data directory (see
:mod:`station_tools.backup`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import aiomqtt
import httpx
from pydantic import TypeAdapter, ValidationError

from station_protocol.channels import Z2M_ROOT
from station_protocol.ids import Layout, charger_of
from station_protocol.simulator import PileControl, PileControlCommand, SimulatorStatus
from station_protocol.zigbee import CardUid, ChargePointErrorCode, OnlineState
from station_runtime.bus import BrokerAddress
from station_tools import backup as backups
from station_tools.arguments import broker_arg, charger_arg, layout_arg, number_arg, pile_arg
from station_tools.launcher import Launcher, StationPlan
from station_tools.simulator.control import (
    JoinFailed,
    JoinNotOpen,
    join_device,
    send_control,
    simulator_status,
    station_piles,
)
from station_tools.station_file import StationFile, pid_alive

DEFAULT_DATA_DIR = Path(".station")
DEFAULT_SYNC_URL = "http://127.0.0.1:8104"
CENTRAL_TOKEN_PATH = "/api/v1/sync/central-token"
DOWN_TIMEOUT = 60.0
DEFAULT_WATCH = 2.0
DEFAULT_KEEP = 7


# -- argument types: a bad value is a clear message and exit code 2 ---------------------------


seconds_arg = number_arg(
    float,
    lambda value: 0 < value < 1e6,
    unreadable="not a number of seconds",
    refused="seconds must be more than 0",
)
watch_arg = number_arg(
    float,
    lambda value: 0 <= value <= 3600,
    unreadable="not a number of seconds",
    refused="watch must be 0..3600 seconds",
)
speedup_arg = number_arg(
    Decimal,
    lambda value: value > 0,
    unreadable="not a number",
    refused="speedup must be a positive number",
)
keep_arg = number_arg(
    int,
    lambda value: 1 <= value <= 10000,
    unreadable="not a whole number",
    refused="keep must be 1..10000 backups",
)
port_offset_arg = number_arg(
    int,
    lambda value: 0 <= value <= 50000,
    unreadable="not a whole number",
    refused="port offset must be 0..50000",
)


def duration_arg(text: str) -> float:
    try:
        seconds = backups.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 1:
        raise argparse.ArgumentTypeError("at least 1 second between backups")
    return seconds


def card_arg(text: str) -> str:
    try:
        return TypeAdapter(CardUid).validate_python(text)
    except ValidationError:
        raise argparse.ArgumentTypeError(
            f"a card uid is 1 to 64 printable ASCII characters, got {text!r}"
        ) from None


def error_code_arg(text: str) -> ChargePointErrorCode:
    try:
        return ChargePointErrorCode(text)
    except ValueError:
        codes = ", ".join(code.value for code in ChargePointErrorCode)
        raise argparse.ArgumentTypeError(f"unknown error code {text!r}; one of {codes}") from None


# -- the parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="station", description="The charging station on this machine."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_up(commands)
    down = commands.add_parser("down", help="stop the station started by `station up`")
    _add_data_dir(down)
    _add_pile(commands)
    _add_sync(commands)
    _add_backup(commands)
    return parser


def _add_backup(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    take = commands.add_parser(
        "backup",
        help="write one backup file of every station database (while the station runs)",
        description=(
            "Copy every station database (verification, billing, faults, console: SQLite "
            "in the data directory, or the PostgreSQL database STATION_<SERVICE>_DATABASE_URL "
            "names) into one compressed file with a manifest (what, when, schema revisions, "
            "checksums). Safe while the station runs: each copy is one consistent snapshot."
        ),
    )
    _add_data_dir(take)
    where = take.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, metavar="FILE", help="write the backup to FILE")
    where.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="write it into DIR under a dated name and keep only the newest --keep there",
    )
    take.add_argument(
        "--keep",
        type=keep_arg,
        default=DEFAULT_KEEP,
        help=f"with --out-dir: how many backups to keep (default {DEFAULT_KEEP})",
    )
    take.add_argument(
        "--station-id",
        help="the station named in the manifest (default $STATION_BILLING_STATION_ID, "
        "else station-1)",
    )
    put = commands.add_parser(
        "restore",
        help="restore a backup file into an empty data directory",
        description=(
            "Check a backup (readable, every checksum right, no schema newer than this "
            "software's) and restore it into an empty data directory (and into the empty "
            "PostgreSQL databases STATION_<SERVICE>_DATABASE_URL names). Start the station on "
            "it afterwards: each service migrates to the newest schema and sync sends the "
            "records central has not confirmed (central keeps each record once)."
        ),
    )
    _add_data_dir(put)
    put.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="FILE", help="the backup"
    )
    put.add_argument("--check", action="store_true", help="only check the file; restore nothing")


def _add_sync(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser("sync", help="the station's link to central")
    actions = sync.add_subparsers(dest="action", required=True, metavar="ACTION")
    token = actions.add_parser(
        "token",
        help="install the station's token for central, read from standard input",
        description=(
            "Install the token central issued for this station (after a rotation) on the "
            "running sync service: it is read from standard input (so it stays out of the "
            "shell's history), kept in sync's data folder (central-token, mode 0600) over "
            "the central_token setting, and used at sync's next try. The backlog is kept."
        ),
    )
    token.add_argument(
        "--url",
        help=f"sync's base URL (default: from station.json, else {DEFAULT_SYNC_URL})",
    )
    _add_data_dir(token)


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where the station keeps its data, logs and station.json (default .station)",
    )


def _add_up(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = commands.add_parser(
        "up",
        help="start the whole station: broker, services, simulated piles",
        description="Start the station and keep it running until Ctrl-C.",
    )
    up.add_argument(
        "--broker",
        type=broker_arg,
        help="use this broker (mqtt://HOST:PORT) instead of starting mosquitto",
    )
    up.add_argument(
        "--simulate",
        type=layout_arg,
        default=Layout(4, 12),
        metavar="NxM",
        help="N chargers with M piles each (default 4x12)",
    )
    up.add_argument(
        "--no-simulator", action="store_true", help="start no simulated piles (real ones talk)"
    )
    up.add_argument(
        "--no-services",
        action="store_true",
        help="start only the broker and the simulator (to run a service yourself)",
    )
    up.add_argument(
        "--t1", type=seconds_arg, default=1.0, help="breath period in seconds (default 1)"
    )
    up.add_argument(
        "--t2",
        type=seconds_arg,
        default=60.0,
        help="seconds from a stored record to its push to central (default 60)",
    )
    up.add_argument(
        "--speedup",
        type=speedup_arg,
        default=Decimal(1),
        help="simulated charging seconds per real second (default 1)",
    )
    up.add_argument(
        "--port-offset",
        type=port_offset_arg,
        default=0,
        help="add this to every service port (8100-8104, 8110, 8120+i), to run two stations",
    )
    up.add_argument(
        "--backup-every",
        type=duration_arg,
        metavar="DURATION",
        help="back up the station's databases this often while it runs (90s, 30m, 1h, 1d)",
    )
    up.add_argument(
        "--backup-keep",
        type=keep_arg,
        default=DEFAULT_KEEP,
        metavar="N",
        help=f"keep the newest N scheduled backups (default {DEFAULT_KEEP})",
    )
    up.add_argument(
        "--backup-dir",
        type=Path,
        metavar="DIR",
        help="where scheduled backups go (default <data dir>/backups; better another disk)",
    )
    _add_data_dir(up)


def _add_pile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--broker", type=broker_arg, help="the simulator's broker (default: from station.json)"
    )
    _add_data_dir(where)
    common = argparse.ArgumentParser(add_help=False, parents=[where])
    common.add_argument(
        "--watch",
        type=watch_arg,
        default=DEFAULT_WATCH,
        metavar="SECONDS",
        help=f"show what the pile's screen says for this long (default {DEFAULT_WATCH:g}, 0: no)",
    )
    pile = commands.add_parser("pile", help="act at a simulated pile (plug, swipe, ...)")
    actions = pile.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (
        ("plug", "plug a car's gun into the pile"),
        ("unplug", "pull the gun out (ends a charge)"),
        ("silence", "the pile's radio goes quiet (a disconnect fault)"),
        ("revive", "the pile's radio comes back"),
    ):
        action = actions.add_parser(name, help=text, parents=[common])
        action.add_argument("pile", type=pile_arg, metavar="PILE")
    swipe = actions.add_parser(
        "swipe", help="hold a card to the pile's reader (again to stop)", parents=[common]
    )
    swipe.add_argument("pile", type=pile_arg, metavar="PILE")
    swipe.add_argument("card", type=card_arg, metavar="CARD")
    fault = actions.add_parser(
        "fault", help="the pile reports an error code (NoError clears it)", parents=[common]
    )
    fault.add_argument("pile", type=pile_arg, metavar="PILE")
    fault.add_argument("code", type=error_code_arg, metavar="CODE")
    join = actions.add_parser(
        "join",
        help="a new pile joins a charger's Zigbee network (prints its IEEE address)",
        description=(
            "A new simulated pile asks to join the charger's Zigbee network, as when a "
            "technician pairs one. It is taken only while joining is open there (open it "
            "from the console); it is then named by its IEEE address, printed here, until "
            "the console renames it to a pile id."
        ),
        parents=[where],
    )
    join.add_argument("charger", type=charger_arg, metavar="CHARGER")


# -- the commands -----------------------------------------------------------------------------


def up(args: argparse.Namespace) -> int:
    plan = StationPlan(
        data_dir=args.data_dir,
        layout=args.simulate,
        broker=args.broker,
        simulator=not args.no_simulator,
        services=not args.no_services,
        t1=args.t1,
        t2=args.t2,
        speedup=args.speedup,
        port_offset=args.port_offset,
        backup_every=args.backup_every,
        backup_keep=args.backup_keep,
        backup_dir=args.backup_dir,
    )
    return Launcher(plan).run()


def down(args: argparse.Namespace) -> int:
    station = StationFile.read(args.data_dir)
    if station is None or not station.launcher_alive():
        StationFile.remove(args.data_dir)
        print(f"station down: no station is running from {args.data_dir}", file=sys.stderr)
        return 1
    pid = station.launcher_pid
    signal_station(pid)
    deadline = time.monotonic() + DOWN_TIMEOUT
    while time.monotonic() < deadline:
        if StationFile.read(args.data_dir) is None or not pid_alive(pid):
            print("station down: stopped")
            return 0
        time.sleep(0.1)
    print(f"station down: the station (pid {pid}) is still stopping", file=sys.stderr)
    return 1


def signal_station(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _station_broker(args: argparse.Namespace) -> BrokerAddress | None:
    """``--broker``, else the running station's; ``None`` (said why) without either."""
    broker: BrokerAddress | None = args.broker
    if broker is None:
        station = StationFile.read(args.data_dir)
        if station is None:
            print(
                f"station pile: no running station in {args.data_dir}; start one with "
                "`station up` or name its broker with --broker",
                file=sys.stderr,
            )
            return None
        broker = BrokerAddress.parse(station.broker)
    return broker


def pile(args: argparse.Namespace) -> int:
    broker = _station_broker(args)
    if broker is None:
        return 1
    if args.action == "join":
        try:
            return asyncio.run(_join(broker, args.charger))
        except aiomqtt.MqttError as exc:
            print(f"station pile: cannot reach the broker {broker}: {exc}", file=sys.stderr)
            return 1
    control = PileControl(
        command=PileControlCommand(args.action),
        card_uid=getattr(args, "card", None),
        error_code=getattr(args, "code", None),
    )
    try:
        return asyncio.run(_act(broker, args.pile, control, args.watch))
    except aiomqtt.MqttError as exc:
        print(f"station pile: cannot reach the broker {broker}: {exc}", file=sys.stderr)
        return 1


async def _running_simulator(
    broker: BrokerAddress, charger: str, subject: str
) -> SimulatorStatus | None:
    """The simulator's status if one runs that has ``charger``; ``None`` (said why) if not.

    ``subject`` names what the user asked about (``c3-p01 is not a pile``).
    """
    status = await simulator_status(broker)
    if status is None or status.state != OnlineState.ONLINE:
        print(f"station pile: no simulator is running on {broker}", file=sys.stderr)
        return None
    if status.layout is not None and charger not in Layout.parse(status.layout).charger_ids():
        print(
            f"station pile: {subject} of the simulated {status.layout} station",
            file=sys.stderr,
        )
        return None
    return status


async def _join(broker: BrokerAddress, charger: str) -> int:
    status = await _running_simulator(broker, charger, f"{charger} is not a charger")
    if status is None:
        return 1
    try:
        address = await join_device(broker, charger, root=status.root or Z2M_ROOT)
    except JoinNotOpen:
        print(
            f"station pile join: joining is closed on {charger}; open it from the console "
            "(permit join) and try again",
            file=sys.stderr,
        )
        return 1
    except JoinFailed as exc:
        print(f"station pile join: {exc}", file=sys.stderr)
        return 1
    print(address, flush=True)
    return 0


async def _act(broker: BrokerAddress, pile_id: str, control: PileControl, watch: float) -> int:
    status = await _running_simulator(broker, charger_of(pile_id), f"{pile_id} is not a pile")
    if status is None:
        return 1
    await _warn_if_stranger(broker, pile_id, status)
    detail = control.card_uid or control.error_code or ""
    print(f"{pile_id}: {control.command} {detail}".rstrip(), flush=True)
    await send_control(
        broker,
        pile_id,
        control,
        watch=watch,
        root=status.root or Z2M_ROOT,
        show=lambda display: print(f"{pile_id} screen: {' | '.join(display.lines)}", flush=True),
    )
    return 0


async def _warn_if_stranger(broker: BrokerAddress, pile_id: str, status: SimulatorStatus) -> None:
    """Say so when the station does not have ``pile_id`` (a typo, a pile not approved yet or
    decommissioned): the device is told all the same, as a real one would act, and the
    station ignores it."""
    piles = await station_piles(broker)
    if piles is not None:
        if not piles.has_pile(pile_id):
            print(
                f"station pile: {pile_id} is not a pile of the station (its console's pile "
                f"set, revision {piles.revision}); sent anyway, the station will ignore it",
                file=sys.stderr,
            )
    elif status.layout is not None and not Layout.parse(status.layout).has_pile(pile_id):
        print(
            f"station pile: {pile_id} is not a pile of the simulated {status.layout} layout; "
            "sent anyway, in case it joined since",
            file=sys.stderr,
        )


def sync_token(args: argparse.Namespace) -> int:
    """``station sync token``: PUT the token from standard input to sync; never print it."""
    token = sys.stdin.read().strip()
    if not token:
        print("station sync token: no token on standard input", file=sys.stderr)
        return 2
    url = args.url or _sync_url(args.data_dir)
    try:
        answer = httpx.put(url.rstrip("/") + CENTRAL_TOKEN_PATH, json={"token": token}, timeout=10)
    except httpx.HTTPError as exc:
        print(f"station sync token: cannot reach sync at {url}: {exc}", file=sys.stderr)
        return 1
    if answer.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
        print(
            "station sync token: refused: a token is 1 to 512 printable characters, no spaces",
            file=sys.stderr,
        )
        return 1
    if answer.status_code != httpx.codes.NO_CONTENT:
        print(f"station sync token: sync answered {answer.status_code}", file=sys.stderr)
        return 1
    print(f"station sync token: installed at {url}; sync sends the backlog with it now")
    return 0


def backup(args: argparse.Namespace) -> int:
    """``station backup``: one file, said where and how big; a failure is one line, exit 1."""
    try:
        if args.out is not None:
            taken = backups.backup(args.data_dir, args.out, station_id=args.station_id)
            pruned: list[Path] = []
        else:
            taken, pruned = backups.backup_into(
                args.data_dir, args.out_dir, args.keep, station_id=args.station_id
            )
    except backups.BackupError as exc:
        print(f"station backup: {exc}", file=sys.stderr)
        return 1
    print(
        f"station backup: {taken.path} ({backups.human_size(taken.size)}, "
        f"{taken.seconds:.1f} s) of station {taken.manifest.station_id}"
    )
    print(backups.describe(taken.manifest))
    for path in pruned:
        print(f"station backup: deleted the older {path.name} (keeping {args.keep})")
    return 0


def restore(args: argparse.Namespace) -> int:
    """``station restore``: refuses with one line and exit 1; else says what came back."""
    started = time.monotonic()
    try:
        if args.check:
            manifest = backups.verify(args.source)
        else:
            manifest = backups.restore(args.source, args.data_dir)
    except backups.BackupError as exc:
        print(f"station restore: {exc}", file=sys.stderr)
        return 1
    done = "is sound" if args.check else f"restored into {args.data_dir}"
    print(
        f"station restore: {args.source} {done} ({time.monotonic() - started:.1f} s): "
        f"station {manifest.station_id}, taken {manifest.created_at.isoformat()}"
    )
    print(backups.describe(manifest))
    if not args.check:
        print(
            f"Start it with `station up --data-dir {args.data_dir}`: the services migrate to "
            "this software's schema, and sync sends what central has not confirmed."
        )
    return 0


def _sync_url(data_dir: Path) -> str:
    station = StationFile.read(data_dir)
    if station is not None:
        for service in station.services:
            if service.name == "sync" and service.url:
                return service.url
    return DEFAULT_SYNC_URL


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "sync":
        raise SystemExit(sync_token(args))
    handlers = {"up": up, "down": down, "pile": pile, "backup": backup, "restore": restore}
    raise SystemExit(handlers[args.command](args))


if __name__ == "__main__":
    main()
