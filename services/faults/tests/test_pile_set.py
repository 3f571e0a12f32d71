"""Faults follows the console's word on the station's piles (the layout, 2 x 4 here, until
the word is heard): a removed pile's bulletins are withdrawn and it is no longer expected, an
added one is expected and its reports raise bulletins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from station_protocol import channels
from station_protocol.ids import Layout
from station_protocol.messages import StationPiles

LAYOUT = Layout(2, 4)


def word(revision: int, *, adding: tuple[str, ...] = (), removing: tuple[str, ...] = ()) -> Any:
    """The console's word: the 2 x 4 layout with ``adding`` approved and ``removing`` gone."""
    chargers = {
        charger: [
            pile
            for pile in [*LAYOUT.piles_of(charger), *adding]
            if pile.startswith(f"{charger}-") and pile not in removing
        ]
        for charger in LAYOUT.charger_ids()
    }
    return StationPiles(chargers=chargers, revision=revision, changed_at=datetime.now(UTC))


async def say(station: Any, piles: StationPiles) -> None:
    """What the console publishes: retained, so a service (re)connecting hears it too."""
    await station.bus.publish(channels.STATION_PILES.topic(), piles, qos=1, retain=True)


async def unknown_pile_drops(faults: Any) -> float:
    value: float = await faults.metric(
        "station_faults_dropped_messages_total", kind="report", reason="unknown_pile"
    )
    return value


async def test_a_removed_pile_has_its_bulletin_withdrawn_and_is_no_longer_expected(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    await station.report("c1", "c1-p03", "pile_unreachable")
    raised = await board.shown("c1-p03", "pile_unreachable")
    assert await faults.metric("station_pile_up", pile="c1-p03") == 0
    assert await faults.metric("station_pile_up") == 7  # 2 x 4 piles, one down

    await say(station, word(1, removing=("c1-p03",)))

    await board.withdrawn("c1-p03", "pile_unreachable")
    assert not await faults.is_active("c1-p03", "pile_unreachable")
    [episode] = await faults.history(source="c1-p03")
    assert episode["id"] == raised.id
    assert episode["active"] is False and episode["cleared_at"] is not None

    async def forgotten() -> bool:
        text = (await faults.http.get("/metrics")).text
        return 'pile="c1-p03"' not in text

    await eventually(forgotten, what="c1-p03 gone from the metrics")
    assert await faults.metric("station_pile_up") == 7  # the 7 piles left, all up
    assert await faults.metric("station_pile_up", pile="c1-p02") == 1

    # a later report about it is nobody's to repair
    before = await unknown_pile_drops(faults)
    await station.report("c1", "c1-p03", "pile_ground_failure")

    async def dropped() -> bool:
        return await unknown_pile_drops(faults) == before + 1

    await eventually(dropped, what="the report about c1-p03 dropped as unknown_pile")
    assert await board.retained("c1-p03", "pile_ground_failure") is None
    # the other piles are announced as ever
    await station.report("c1", "c1-p02", "pile_ground_failure")
    await board.shown("c1-p02", "pile_ground_failure")


async def test_an_approved_pile_beyond_the_layout_is_expected_and_announced(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    await station.report("c1", "c1-p13", "pile_unreachable")

    async def dropped() -> bool:
        return await unknown_pile_drops(faults) == 1

    await eventually(dropped, what="the report about c1-p13 dropped before its approval")
    assert await board.retained("c1-p13", "pile_unreachable") is None
    assert 'pile="c1-p13"' not in (await faults.http.get("/metrics")).text

    await say(station, word(1, adding=("c1-p13",)))

    # the report that stands retained is read again: no need for the collector to repeat it
    bulletin = await board.shown("c1-p13", "pile_unreachable")
    assert (bulletin.charger, bulletin.pile_id) == ("c1", "c1-p13")
    assert (await faults.active_on("c1-p13", "pile_unreachable"))["pile_id"] == "c1-p13"

    async def exported_down() -> bool:
        text = (await faults.http.get("/metrics")).text
        return 'station_pile_up{charger="c1",pile="c1-p13"} 0.0' in text

    await eventually(exported_down, what="c1-p13 exported, and down")
    assert await faults.metric("station_pile_up") == 8  # 2 x 4 and c1-p13, one down

    await station.report("c1", "c1-p13", "pile_unreachable", active=False)
    await board.withdrawn("c1-p13", "pile_unreachable")

    async def up_again() -> bool:
        return await faults.metric("station_pile_up", pile="c1-p13") == 1

    await eventually(up_again, what="c1-p13 up again")


async def test_a_restarted_service_goes_by_the_word_it_finds_retained(
    settings: Any, start_faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    """The console's word outlives a restart of faults: it is taken before the reports."""
    await say(station, word(2, adding=("c2-p05",), removing=("c1-p01",)))
    await station.report("c2", "c2-p05", "pile_unreachable")
    await station.report("c1", "c1-p01", "pile_unreachable")

    async with start_faults(settings) as faults:
        await board.shown("c2-p05", "pile_unreachable")

        async def dropped() -> bool:
            return await unknown_pile_drops(faults) >= 1

        await eventually(dropped, what="the report about the removed c1-p01 dropped")
        assert await board.retained("c1-p01", "pile_unreachable") is None
        assert await faults.metric("station_pile_up", pile="c2-p05") == 0
        assert await faults.metric("station_pile_up") == 7
