"""The receipt a driver sees on the pile display when a charge ends.

A pile display is small: a few short lines and a QR code whose payload lets a phone fetch
the receipt later. The lines repeat the record's own totals, so the screen and the stored
record can never disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

from station_protocol.messages import Receipt
from station_protocol.ocpi import Price


def build_receipt(
    *,
    session_id: str,
    pile_id: str,
    card_uid: str,
    started_at: datetime,
    stopped_at: datetime,
    total_energy: Decimal,
    total_cost: Price,
    currency: str,
    station_id: str,
) -> Receipt:
    return Receipt(
        session_id=session_id,
        pile_id=pile_id,
        card_uid=card_uid,
        started_at=started_at,
        stopped_at=stopped_at,
        total_energy=total_energy,
        total_cost=total_cost,
        currency=currency,
        lines=receipt_lines(stopped_at - started_at, total_energy, total_cost, currency),
        qr=receipt_qr(station_id, session_id, total_cost, currency),
    )


def receipt_lines(
    duration: timedelta, total_energy: Decimal, total_cost: Price, currency: str
) -> list[str]:
    """``["Charge complete", "Energy 12.345 kWh", "Duration 0:42:10", ...]``."""
    lines = [
        "Charge complete",
        f"Energy {total_energy:f} kWh",
        f"Duration {format_duration(duration)}",
        f"Energy cost {total_cost.excl_vat:f} {currency}",
    ]
    vat = total_cost.incl_vat - total_cost.excl_vat
    if vat != 0:
        lines.append(f"VAT {vat:f} {currency}")
    lines.append(f"Total {total_cost.incl_vat:f} {currency}")
    return lines


def format_duration(duration: timedelta) -> str:
    """``H:MM:SS``, whole seconds, hours past 24 kept (a display has no room for days)."""
    seconds = max(0, int(duration.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def receipt_qr(station_id: str, session_id: str, total_cost: Price, currency: str) -> str:
    """``station://receipt/<session>?total=14.81&currency=CNY&station=station-1``."""
    query = urlencode(
        {"total": f"{total_cost.incl_vat:f}", "currency": currency, "station": station_id}
    )
    return f"station://receipt/{quote(session_id, safe='')}?{query}"
