"""``station-billing``: serve (the default), or price CDRs offline with the service's engine.

``station-billing price --tariff TARIFF.json --cdr CDR.json [--tz Asia/Shanghai]`` reads an
OCPI 2.2.1 Tariff and an OCPI CDR (``start_date_time``, ``end_date_time``,
``charging_periods`` with their dimensions), evaluates the tariff's restrictions in the
given IANA zone (default: the billing service's ``time_zone`` setting) and prints the CDR
totals as one line of JSON: ``total_cost`` and each ``total_*_cost`` as OCPI Price objects
(``excl_vat``, ``incl_vat``; money as decimal strings), ``total_energy`` in kWh,
``total_time`` and ``total_parking_time`` in hours.

``--cdrs FILE.jsonl`` instead prices many CDRs, one JSON object a line, and prints one
result a line in the same order (blank lines are skipped): how an operator reprices a
month of sessions after a tariff dispute. A line that cannot be priced prints
``{"line": N, "error": "..."}`` in its place, says so on stderr, and the others are still
priced.

Bad input exits with status 2 and one line on stderr that says what is wrong (the file,
and the field or line at fault). It is the same code the service prices with
(:mod:`station_billing.pricing`), so this is also how a disputed bill is checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn, TextIO
from zoneinfo import ZoneInfo

from station_billing.pricing import (
    CdrError,
    CompiledTariff,
    InvalidTariff,
    compile_tariff,
    price_session,
    read_tariff,
    session_from_cdr,
    totals_json,
)
from station_billing.pricing.localtime import StationZone, UnknownZone

BAD_INPUT = 2
PROG = "station-billing"


class BadInput(Exception):
    """Input the CLI cannot price; the message is the one line it prints."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, as every other bad input (argparse would add the usage)."""
        self.exit(BAD_INPUT, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog=PROG, description="The billing service of the charging station.")
    commands = top.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser("serve", help="run the billing service (the default)")
    price = commands.add_parser("price", help="price OCPI CDRs offline with an OCPI tariff")
    price.add_argument("--tariff", required=True, type=Path, help="an OCPI 2.2.1 Tariff (JSON)")
    cdrs = price.add_mutually_exclusive_group(required=True)
    cdrs.add_argument("--cdr", type=Path, help="one OCPI CDR (JSON)")
    cdrs.add_argument("--cdrs", type=Path, help="many OCPI CDRs, one JSON object a line")
    price.add_argument(
        "--tz", help="IANA time zone of the station (default: billing's time_zone setting)"
    )
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in (None, "serve"):
        serve()
        return
    sys.exit(price_command(args.tariff, args.cdr, args.cdrs, args.tz, sys.stdout, sys.stderr))


def serve() -> None:
    from station_billing.core.config import SERVICE, Settings
    from station_billing.main import create_app
    from station_runtime.serve import serve as run

    settings = Settings()
    run(create_app(settings), settings, SERVICE)


def price_command(
    tariff_path: Path,
    cdr_path: Path | None,
    cdrs_path: Path | None,
    tz: str | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """The ``price`` subcommand; the exit status."""
    try:
        zone = StationZone.named(tz) if tz is not None else StationZone(_station_zone())
        tariff = _load_tariff(tariff_path)
        if cdr_path is not None:
            cdr = _load_json(cdr_path)
            out.write(_priced_line(tariff, zone, cdr, cdr_path.name) + "\n")
            return 0
    except UnknownZone as exc:
        err.write(f"{PROG} price: error: --tz: {exc}\n")
        return BAD_INPUT
    except BadInput as exc:
        err.write(f"{PROG} price: error: {exc}\n")
        return BAD_INPUT
    assert cdrs_path is not None
    return _price_batch(tariff, zone, cdrs_path, out, err)


def _station_zone() -> ZoneInfo:
    from station_billing.core.config import Settings

    return Settings().time_zone


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None


def _load_json(path: Path) -> Any:
    try:
        return json.loads(_read(path), parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not JSON: {exc}") from None


def _load_tariff(path: Path) -> CompiledTariff:
    data = _load_json(path)
    if isinstance(data, dict) and "last_updated" not in data:
        # Prices do not depend on it; an operator's hand-written tariff may lack it.
        data["last_updated"] = "1970-01-01T00:00:00Z"
    try:
        return compile_tariff(read_tariff(data))
    except InvalidTariff as exc:
        raise BadInput(f"{path}: {exc}") from None


def _priced_line(tariff: CompiledTariff, zone: StationZone, cdr: Any, where: str) -> str:
    try:
        session = session_from_cdr(cdr, zone)
    except CdrError as exc:
        raise BadInput(f"{where}: {exc}") from None
    result = totals_json(price_session(tariff, session))
    if isinstance(cdr, dict) and isinstance(cdr.get("id"), str):
        result = {"id": cdr["id"], **result}
    return json.dumps(result)


def _price_batch(
    tariff: CompiledTariff, zone: StationZone, path: Path, out: TextIO, err: TextIO
) -> int:
    try:
        source = path.open(encoding="utf-8")
    except OSError as exc:
        err.write(f"{PROG} price: error: {path}: cannot read: {exc}\n")
        return BAD_INPUT
    status = 0
    with source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                cdr = json.loads(line, parse_float=Decimal)
                out.write(_priced_line(tariff, zone, cdr, f"{path}:{number}") + "\n")
            except (BadInput, json.JSONDecodeError, UnicodeDecodeError) as exc:
                message = (
                    str(exc) if isinstance(exc, BadInput) else f"{path}:{number}: not JSON: {exc}"
                )
                out.write(json.dumps({"line": number, "error": message}) + "\n")
                err.write(f"{PROG} price: error: {message}\n")
                status = BAD_INPUT
    return status
