"""The receipt a driver sees on the pile display when a charge ends.

A pile display is small: a few short lines and a QR code whose payload lets a phone fetch
the receipt later. The lines repeat the record's own totals (energy, duration, each cost
component, VAT, the total) and the card's balance after the debit, so the screen and the
stored record can never disagree. Each amount is the record's total for that component
rounded once (rule 9): the components may differ from the total by a minor unit, and a
minimum or maximum price that applied is said so rather than spread over the lines.

The balance line comes from verification's answer to the debit. When verification has not
answered in time the receipt says the balance is pending instead of guessing a figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

from station_billing.pricing import Totals
from station_protocol.messages import Receipt
from station_protocol.ocpi import Price

ZERO = Decimal(0)
BALANCE_PENDING = "Balance pending"


@dataclass(frozen=True)
class Costs:
    """The record's costs as the receipt shows them (excl VAT per component)."""

    total: Price
    energy: Decimal = ZERO
    time: Decimal = ZERO
    parking: Decimal = ZERO
    fixed: Decimal = ZERO
    min_price_applied: bool = False
    max_price_applied: bool = False

    @classmethod
    def of(cls, totals: Totals) -> Costs:
        return cls(
            total=totals.total_cost.price(),
            energy=totals.total_energy_cost.excl_vat,
            time=totals.total_time_cost.excl_vat,
            parking=totals.total_parking_cost.excl_vat,
            fixed=totals.total_fixed_cost.excl_vat,
            min_price_applied=totals.min_price_applied,
            max_price_applied=totals.max_price_applied,
        )


def build_receipt(
    *,
    session_id: str,
    pile_id: str,
    card_uid: str,
    started_at: datetime,
    stopped_at: datetime,
    total_energy: Decimal,
    costs: Costs,
    currency: str,
    station_id: str,
    balance: Decimal | None = None,
) -> Receipt:
    """``balance`` is the card's balance after the debit; ``None`` while it is not known."""
    return Receipt(
        session_id=session_id,
        pile_id=pile_id,
        card_uid=card_uid,
        started_at=started_at,
        stopped_at=stopped_at,
        total_energy=total_energy,
        total_cost=costs.total,
        currency=currency,
        lines=receipt_lines(stopped_at - started_at, total_energy, costs, currency, balance),
        qr=receipt_qr(station_id, session_id, costs.total, currency),
    )


def with_balance(receipt: Receipt, balance: Decimal | None) -> Receipt:
    """The receipt with its last line saying the balance after the debit (or pending)."""
    return receipt.model_copy(
        update={"lines": [*receipt.lines[:-1], balance_line(balance, receipt.currency)]}
    )


def receipt_lines(
    duration: timedelta,
    total_energy: Decimal,
    costs: Costs,
    currency: str,
    balance: Decimal | None,
) -> list[str]:
    """``["Charge complete", "Energy 12.345 kWh", "Duration 0:42:10", ...]``."""
    lines = [
        "Charge complete",
        f"Energy {total_energy:f} kWh",
        f"Duration {format_duration(duration)}",
        f"Energy cost {costs.energy:f} {currency}",
    ]
    for label, amount in (
        ("Time cost", costs.time),
        ("Parking cost", costs.parking),
        ("Start fee", costs.fixed),
    ):
        if amount:
            lines.append(f"{label} {amount:f} {currency}")
    if costs.min_price_applied:
        lines.append("Minimum price applied")
    if costs.max_price_applied:
        lines.append("Maximum price applied")
    vat = costs.total.incl_vat - costs.total.excl_vat
    if vat != 0:
        lines.append(f"VAT {vat:f} {currency}")
    lines.append(f"Total {costs.total.incl_vat:f} {currency}")
    lines.append(balance_line(balance, currency))
    return lines


def balance_line(balance: Decimal | None, currency: str) -> str:
    return BALANCE_PENDING if balance is None else f"Balance {balance:f} {currency}"


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
