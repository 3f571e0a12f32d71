"""The price before charging: a retained tariff display per pile, refreshed when it changes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from station_billing.pricing import compile_tariff, read_tariff
from station_billing.pricing.localtime import StationZone
from station_billing.tariff_displays import next_band_change, price_text
from station_protocol import channels
from station_protocol.ids import Layout
from station_protocol.messages import TariffDisplay
from station_runtime.clock import utc_now

TIME_OF_USE = {
    "currency": "CNY",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": "0.95", "vat": "13", "step_size": 0}],
            "restrictions": {"start_time": "08:00", "end_time": "22:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": "0.45", "vat": "13", "step_size": 0}]},
        {"price_components": [{"type": "PARKING_TIME", "price": "6.00", "step_size": 0}]},
    ],
}


def latest(heard: Any, pile: str) -> TariffDisplay | None:
    topic = channels.PILE_TARIFF.topic(pile=pile)
    shown = [TariffDisplay.model_validate_json(p) for t, p in heard.messages if t == topic]
    return shown[-1] if shown else None


async def shown_on(heard: Any, pile: str, check: Any, timeout: float = 5.0) -> TariffDisplay:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        display = latest(heard, pile)
        if display is not None and check(display):
            return display
        if loop.time() > deadline:
            raise AssertionError(f"{pile} shows {display}")
        await asyncio.sleep(0.02)


async def test_every_pile_of_the_layout_shows_the_price_before_anyone_swipes(
    settings: Any, clock: Any, start_billing: Any, listen: Any
) -> None:
    laid_out = settings.model_copy(update={"layout": Layout.parse("1x2")})
    async with listen(channels.PILE_TARIFF.filter()) as heard, start_billing(laid_out, clock):
        for pile in ("c1-p01", "c1-p02"):
            display = await shown_on(heard, pile, lambda d: d.tariff_id == "default")
            assert display.energy_price == Decimal("1.20")
            assert display.lines == ["Price now / 当前价格", "Energy 1.20 CNY/kWh"]
            assert display.valid_until is None


async def test_an_assignment_changes_the_display_at_once_with_the_band_now_and_its_end(
    billing: Any, collector: Any, new_pile: Any, listen: Any
) -> None:
    pile = new_pile()
    async with listen(channels.PILE_TARIFF.filter()) as heard:
        await collector.reading(pile, None, energy="1")  # billing learns of the pile
        await shown_on(heard, pile, lambda d: d.tariff_id == "default")
        await billing.http.put("/api/v1/tariffs/tou", content=json.dumps(TIME_OF_USE))
        await billing.http.post(
            "/api/v1/tariff-assignments", json={"tariff_id": "tou", "pile_id": pile}
        )
        # the station clock says 06:00 UTC: 14:00 in Shanghai, the day band until 22:00
        display = await shown_on(heard, pile, lambda d: d.tariff_id == "tou")
    assert display.energy_price == Decimal("1.0735")  # 0.95 + 13 % VAT
    assert display.parking_price == Decimal("6.00")
    assert display.time_price is None and display.flat_price is None
    assert display.valid_until == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    assert display.lines == [
        "Price now / 当前价格",
        "Energy 1.0735 CNY/kWh",
        "Parking 6.00 CNY/h",
        "Until 22:00",
    ]
    retained = json.loads(heard.messages[-1][1])
    assert retained["energy_price"] == "1.0735"


async def test_at_a_band_boundary_the_display_moves_to_the_next_band(
    billing: Any, collector: Any, new_pile: Any, listen: Any
) -> None:
    pile = new_pile()
    await billing.http.put("/api/v1/tariffs/tou-night", content=json.dumps(TIME_OF_USE))
    await billing.http.post(
        "/api/v1/tariff-assignments", json={"tariff_id": "tou-night", "pile_id": pile}
    )
    async with listen(channels.PILE_TARIFF.filter()) as heard:
        await collector.reading(pile, None, energy="1")
        await shown_on(heard, pile, lambda d: d.energy_price == Decimal("1.0735"))
        billing.clock.advance(hours=8)  # 22:00 in Shanghai
        await billing.app.state.service.state.displays.refresh()
        night = await shown_on(heard, pile, lambda d: d.energy_price == Decimal("0.5085"))
    assert night.valid_until == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)  # 08:00 local


async def test_the_display_refreshes_by_itself_when_an_assignment_starts(
    settings: Any, start_billing: Any, collector: Any, new_pile: Any, listen: Any
) -> None:
    """With the real clock: the refresher wakes at the assignment's start, unprompted."""
    pile = new_pile()
    async with (
        start_billing(settings, utc_now) as billing,
        listen(channels.PILE_TARIFF.filter()) as heard,
    ):
        await collector.reading(pile, None, energy="1")
        await shown_on(heard, pile, lambda d: d.tariff_id == "default")
        await billing.http.put("/api/v1/tariffs/soon", content=json.dumps(TIME_OF_USE))
        starts = datetime.now(UTC) + timedelta(seconds=1)
        await billing.http.post(
            "/api/v1/tariff-assignments",
            json={"tariff_id": "soon", "pile_id": pile, "valid_from": starts.isoformat()},
        )
        waiting = await shown_on(heard, pile, lambda d: d.valid_until is not None)
        assert waiting.tariff_id == "default" and waiting.valid_until == starts
        await shown_on(heard, pile, lambda d: d.tariff_id == "soon", timeout=5)


def test_next_band_change_is_the_next_local_boundary_across_midnight_and_dst() -> None:
    compiled = compile_tariff(
        read_tariff({**TIME_OF_USE, "id": "t", "last_updated": "2026-01-01T00:00:00Z"})
    )
    shanghai = StationZone.named("Asia/Shanghai")
    at_night = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 23:00 local
    assert next_band_change(compiled, shanghai, at_night) == datetime(2026, 3, 3, 0, 0, tzinfo=UTC)
    berlin = StationZone.named("Europe/Berlin")
    before_jump = datetime(2024, 3, 30, 21, 30, tzinfo=UTC)  # 22:30 CET, clocks go forward at 2:00
    assert next_band_change(compiled, berlin, before_jump) == datetime(
        2024, 3, 31, 6, 0, tzinfo=UTC
    )  # 08:00 CEST


def test_unit_prices_show_cents_and_up_to_four_places() -> None:
    assert [price_text(Decimal(v)) for v in ("1.2", "1.0735", "0.508500", "1.23456")] == [
        "1.20",
        "1.0735",
        "0.5085",
        "1.2346",
    ]
