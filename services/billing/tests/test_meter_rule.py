"""Billing believes no reading a pile cannot have counted, and every checkout ends in a record.

The findings reproduced: a reading of ``1E+308`` wedged a session (its checkout failed for
ever), a jump of 100 kWh was billed, an opening at ``meter_start: 0`` on a pile whose meter
stands at 788.872 billed 788.872 kWh, and an inflated closing reading was billed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from station_billing.core.config import Settings
from station_protocol import channels
from station_protocol.ids import Layout


def sid() -> str:
    return str(uuid.uuid4())


async def test_a_reading_of_1e308_is_dropped_and_the_session_checks_out(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="50")
    topic = channels.PILE_METER.topic(pile=pile)
    await collector.bus.publish(topic, b'{"v":"v1","pile_id":"%s","energy":1E+308}' % pile.encode())
    await billing.settled("station_billing_dropped_messages_total", 1, 'kind="meter"')

    billing.clock.advance(minutes=10)
    reply = await collector.checkout(session, pile, meter_stop="60")

    assert reply.ok and reply.receipt is not None
    assert reply.receipt.total_energy == Decimal("10")
    assert (await billing.session(session))["anomaly"] is None


async def test_a_jump_of_100_kwh_is_not_billed_and_the_readings_after_it_are(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="1000")
    billing.clock.advance(seconds=10)
    await collector.reading(pile, session, energy="1100", charging=True)
    await billing.readings_seen(1)
    billing.clock.advance(seconds=10)
    await collector.reading(pile, session, energy="1000.02", charging=True)
    await billing.readings_seen(2)

    assert (
        await billing.metric("station_billing_meter_readings_total", 'outcome="implausible"') == 1
    )
    assert await billing.metric("station_billing_meter_readings_total", 'outcome="sampled"') == 1
    # The collector's own closing reading is the jump again: billed to the last believed one.
    billing.clock.advance(seconds=1)
    reply = await collector.checkout(session, pile, meter_stop="1100.008")

    assert reply.ok and reply.receipt is not None
    record = await billing.session(session)
    assert (record["total_energy"], record["meter_stop"]) == ("0.02", "1000.02")
    assert record["anomaly"] == "meter_implausible"
    assert record["total_cost"]["incl_vat"] == "0.02"


async def test_an_opening_below_the_piles_meter_is_refused(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile = new_pile()
    await collector.reading(pile, None, energy="788.872")
    await billing.readings_seen(1)
    billing.clock.advance(minutes=1)

    refused = await collector.open(sid(), pile, "CARD-1", meter_start="0")
    forward = await collector.open(sid(), pile, "CARD-1", meter_start="900")

    assert (refused.opened, forward.opened) == (False, False)
    assert refused.error == "meter_start is not the pile's meter reading"
    assert (
        await billing.metric(
            "station_billing_sessions_refused_total", 'reason="implausible_meter_start"'
        )
        == 2
    )
    assert await billing.sessions(status="active", pile_id=pile) == []
    # The pile's real reading opens, and a redelivery of it is answered alike.
    session = sid()
    assert (await collector.open(session, pile, "CARD-1", meter_start="788.872")).opened
    assert (await collector.open(session, pile, "CARD-1", meter_start="788.872")).opened


async def test_an_inflated_closing_reading_is_billed_to_the_last_believed_one(
    billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="0")
    billing.clock.advance(minutes=1)
    await collector.reading(pile, session, energy="1", charging=True)
    await billing.readings_seen(1)
    billing.clock.advance(seconds=5)

    reply = await collector.checkout(session, pile, meter_stop="788.872")

    assert reply.ok
    record = await billing.session(session)
    assert (record["total_energy"], record["anomaly"]) == ("1", "meter_implausible")


@pytest.fixture
async def unpriceable_billing(
    settings: Settings, clock: Any, ledger: Any, start_billing: Any
) -> AsyncIterator[Any]:
    """A price no Decimal context can carry to two places: pricing itself fails."""
    unpriceable = settings.model_copy(update={"price_per_kwh": Decimal("1E+300")})
    async with start_billing(unpriceable, clock) as billing:
        yield billing


async def test_a_session_that_cannot_be_priced_still_ends_in_a_record(
    unpriceable_billing: Any, collector: Any, new_pile: Any
) -> None:
    pile, session = new_pile(), sid()
    await collector.open(session, pile, "CARD-1", meter_start="10")
    unpriceable_billing.clock.advance(minutes=10)

    reply = await collector.checkout(session, pile, meter_stop="15")

    assert reply.ok and reply.receipt is not None
    record = await unpriceable_billing.session(session)
    assert record["status"] == "completed"
    assert (record["total_energy"], record["anomaly"]) == ("0", "pricing_failed")
    assert record["total_cost"] == {"excl_vat": "0", "incl_vat": "0"}
    # The pile is free again: the next driver opens a session on it.
    assert (await collector.open(sid(), pile, "CARD-2", meter_start="15")).opened


async def test_no_session_opens_and_no_reading_counts_on_a_pile_the_station_lacks(
    settings: Settings, clock: Any, ledger: Any, start_billing: Any, collector: Any
) -> None:
    """The fuzzer's finding: forged openings made sessions on piles like ``c903-p03``."""
    with_layout = settings.model_copy(update={"layout": Layout(2, 4)})
    async with start_billing(with_layout, clock) as billing:
        refused = await collector.open(sid(), "c903-p03", "CARD-1", meter_start="0")
        beyond = await collector.open(sid(), "c1-p05", "CARD-1", meter_start="0")
        await collector.reading("c2-p09", None, energy="1")
        await billing.settled("station_billing_meter_readings_total", 1, 'outcome="unknown_pile"')

        assert (refused.opened, beyond.opened) == (False, False)
        assert refused.error == "no such pile at this station"
        assert await billing.sessions(status="active") == []
        assert (await collector.open(sid(), "c2-p04", "CARD-1", meter_start="0")).opened
