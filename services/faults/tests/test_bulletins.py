"""Fault reports become bulletins: retained on the broker, in the REST API, in the history."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from station_protocol import channels
from station_protocol.catalogue import Language, load_catalogue
from station_protocol.messages import FaultReport


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_pile_fault_is_announced_with_causes_and_remedies(
    faults: Any, station: Any, board: Any
) -> None:
    began = now() - timedelta(seconds=3)
    await station.report("c1", "c1-p03", "pile_ground_failure", since=began)

    bulletin = await board.shown("c1-p03", "pile_ground_failure")

    assert bulletin.severity == "critical"
    assert (bulletin.charger, bulletin.pile_id) == ("c1", "c1-p03")
    assert bulletin.title.en == "Ground fault: residual current protection tripped"
    assert bulletin.title.zh == "接地故障：漏电保护动作"
    assert bulletin.since == began
    assert len(bulletin.causes) >= 3 and len(bulletin.remedies) >= 3
    assert "RCD" in bulletin.causes[2].en
    assert bulletin.remedies[0].en.startswith("Keep the pile out of service")
    english = await faults.active_on("c1-p03", "pile_ground_failure")
    assert english["id"] == bulletin.id
    assert english["severity"] == "critical"
    assert english["pile_id"] == "c1-p03"
    assert english["title"] == "Ground fault: residual current protection tripped"
    assert english["causes"] == [cause.en for cause in bulletin.causes]
    assert english["remedies"] == [remedy.en for remedy in bulletin.remedies]
    assert english["raised_at"] is not None and english["acked_by"] is None
    chinese = await faults.active_on("c1-p03", "pile_ground_failure", lang="zh")
    assert chinese["title"] == "接地故障：漏电保护动作"
    assert chinese["remedies"][0] == "保持该桩停用，不要反复复位漏电保护器。"
    assert chinese["causes"] == [cause.zh for cause in bulletin.causes]


async def test_a_cleared_fault_withdraws_its_bulletin_and_keeps_its_duration(
    faults: Any, station: Any, board: Any
) -> None:
    began = now() - timedelta(seconds=4)
    await station.report("c1", "c1-p04", "pile_unreachable", since=began)
    raised = await board.shown("c1-p04", "pile_unreachable")

    await station.report("c1", "c1-p04", "pile_unreachable", active=False, since=began)

    await board.withdrawn("c1-p04", "pile_unreachable")
    assert not await faults.is_active("c1-p04", "pile_unreachable")
    [episode] = await faults.history(source="c1-p04")
    assert episode["id"] == raised.id
    assert episode["active"] is False
    assert episode["cleared_at"] is not None
    assert 4 <= episode["duration_seconds"] < 30
    assert episode["remedies"][0].startswith("Look at the pile")


async def test_the_most_severe_faults_come_first(faults: Any, station: Any, board: Any) -> None:
    await station.report("c1", "c1-p01", "weak_zigbee_link")
    await station.report("c2", "c2-p02", "pile_high_temperature")
    await station.report("c1", "c1-p02", "meter_stuck")
    await board.shown("c1-p02", "meter_stuck")

    active = await faults.active()

    assert [fault["code"] for fault in active] == [
        "pile_high_temperature",
        "meter_stuck",
        "weak_zigbee_link",
    ]
    only_c1 = await faults.active(charger="c1")
    assert {fault["source"] for fault in only_c1} == {"c1-p01", "c1-p02"}
    critical = await faults.active(severity="critical")
    assert [fault["source"] for fault in critical] == ["c2-p02"]


async def test_a_repeated_report_is_one_bulletin(faults: Any, station: Any, board: Any) -> None:
    for _ in range(3):
        await station.report("c1", "c1-p01", "card_reader_failure")
    first = await board.shown("c1-p01", "card_reader_failure")
    await station.report("c2", "c2-p01", "card_reader_failure")
    await board.shown("c2-p01", "card_reader_failure")

    assert {b.id for b in board.messages("c1-p01", "card_reader_failure") if b} == {first.id}
    assert len(await faults.history(source="c1-p01")) == 1
    assert await faults.metric("station_bulletins_raised_total", code="card_reader_failure") == 2


async def test_a_flapping_link_is_one_episode_within_the_hold_down(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    """hold_down is 1 s here: returns within it continue the episode, a later one does not."""
    pile, code = "c2-p03", "pile_unreachable"
    await station.report("c2", pile, code)
    first = await board.shown(pile, code)
    for _ in range(3):
        await station.report("c2", pile, code, active=False)
        await board.withdrawn(pile, code)
        await station.report("c2", pile, code)
        again = await board.shown(pile, code)
        assert again.id == first.id
        assert again.raised_at == first.raised_at

    assert again.flaps == 3
    assert len(await faults.history(source=pile)) == 1
    assert await faults.metric("station_bulletins_raised_total", code=code) == 1
    assert await faults.metric("station_bulletins_reopened_total", code=code) == 3

    await station.report("c2", pile, code, active=False)
    await board.withdrawn(pile, code)
    await asyncio.sleep(faults.app.state.service.kit.settings.hold_down + 0.1)
    await station.report("c2", pile, code)
    later = await eventually(
        lambda: _new_bulletin(board, pile, code, first.id), what="a new episode's bulletin"
    )

    assert later.flaps == 0
    assert [e["id"] for e in await faults.history(source=pile)] == [later.id, first.id]
    assert await faults.metric("station_bulletins_raised_total", code=code) == 2


async def _new_bulletin(board: Any, source: str, code: str, old_id: str) -> Any:
    shown = await board.retained(source, code)
    return shown if shown is not None and shown.id != old_id else None


async def test_a_service_fault_is_announced_too(faults: Any, station: Any, board: Any) -> None:
    await station.service_report("sync", "central", "central_sync_backlog", active=True)

    bulletin = await board.shown("central", "central_sync_backlog")

    assert bulletin.scope == "station" and bulletin.charger is None
    assert bulletin.detail == {"service": "sync"}
    view = await faults.active_on("central", "central_sync_backlog", lang="zh")
    assert view["title"] == "充电记录未同步到中心服务器"
    await station.service_report("sync", "central", "central_sync_backlog", active=False)
    await board.withdrawn("central", "central_sync_backlog")


async def test_bad_reports_are_counted_and_dropped(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    at = now()
    topic = channels.COLLECTOR_FAULT.topic(charger="c1", source="c1-p04", code="pile_unreachable")
    await station.raw_report(topic, b"{not json")
    await station.raw_report(topic, b'{"v": "v1", "charger": "c1", "active": "perhaps"}')
    other_charger = FaultReport(
        charger="c2",
        source="c1-p04",
        code="pile_unreachable",
        active=True,
        since=at,
        detected_at=at,
    )
    await station.raw_report(topic, other_charger)
    foreign_pile = FaultReport(
        charger="c1",
        source="c2-p01",
        code="pile_unreachable",
        active=True,
        since=at,
        detected_at=at,
    )
    await station.raw_report(
        channels.COLLECTOR_FAULT.topic(charger="c1", source="c2-p01", code="pile_unreachable"),
        foreign_pile,
    )
    unknown = FaultReport(
        charger="c1", source="c1-p04", code="pile_on_fire", active=True, since=at, detected_at=at
    )
    await station.raw_report(
        channels.COLLECTOR_FAULT.topic(charger="c1", source="c1-p04", code="pile_on_fire"), unknown
    )

    async def all_dropped() -> bool:
        return await faults.metric("station_faults_dropped_messages_total", kind="report") == 5

    await eventually(all_dropped, what="five reports dropped")
    assert await faults.metric("station_faults_dropped_messages_total", reason="malformed") == 2
    assert (
        await faults.metric("station_faults_dropped_messages_total", reason="topic_mismatch") == 2
    )
    assert await faults.metric("station_faults_dropped_messages_total", reason="unknown_code") == 1
    assert await faults.active() == []
    # the service goes on announcing
    await station.report("c1", "c1-p04", "pile_unreachable")
    await board.shown("c1-p04", "pile_unreachable")


async def test_reports_about_piles_outside_the_station_are_counted_and_dropped(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    """The station is 2 x 4 here: c9-p01 (a charger it lacks) and c1-p05 (a pile its c1 lacks)
    are nobody's to repair; their reports, raise or clear, raise nothing and are counted."""
    await station.report("c9", "c9-p01", "pile_ground_failure")
    await station.report("c1", "c1-p05", "pile_ground_failure")
    await station.report("c9", "c9", "zigbee_bridge_offline")
    await station.report("c9", "c9-p01", "pile_ground_failure", active=False)

    async def all_dropped() -> bool:
        return (
            await faults.metric(
                "station_faults_dropped_messages_total", kind="report", reason="unknown_pile"
            )
            == 4
        )

    await eventually(all_dropped, what="four reports dropped as unknown_pile")
    assert await faults.active() == []
    assert await faults.history() == []
    assert board.messages("c9-p01", "pile_ground_failure") == []
    # a pile of the station is announced as ever
    await station.report("c2", "c2-p04", "pile_ground_failure")
    await board.shown("c2-p04", "pile_ground_failure")


async def test_an_acknowledgement_is_stored_and_shown(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    await station.report("c1", "c1-p02", "pile_over_current_failure")
    bulletin = await board.shown("c1-p02", "pile_over_current_failure")

    response = await faults.http.post(
        f"/api/v1/faults/{bulletin.id}/ack", json={"who": "  li.wei "}
    )

    assert response.status_code == 200, response.text
    acked = response.json()
    assert acked["acked_by"] == "li.wei"
    assert acked["acked_at"] is not None
    shown = await eventually(
        lambda: _acked_bulletin(board, "c1-p02", "pile_over_current_failure"), what="acked"
    )
    assert shown.acked_by == "li.wei" and shown.id == bulletin.id
    later = await faults.http.post(f"/api/v1/faults/{bulletin.id}/ack", json={"who": "zhang.min"})
    assert later.status_code == 200
    assert (later.json()["acked_by"], later.json()["acked_at"]) == ("li.wei", acked["acked_at"])
    assert (await faults.active_on("c1-p02", "pile_over_current_failure"))["acked_by"] == "li.wei"

    unknown = await faults.http.post("/api/v1/faults/no-such-fault/ack", json={"who": "li.wei"})
    assert unknown.status_code == 404
    nobody = await faults.http.post(f"/api/v1/faults/{bulletin.id}/ack", json={"who": "  "})
    assert nobody.status_code == 422


async def _acked_bulletin(board: Any, source: str, code: str) -> Any:
    shown = await board.retained(source, code)
    return shown if shown is not None and shown.acked_by else None


async def test_an_unknown_language_is_a_clear_error(faults: Any) -> None:
    response = await faults.http.get("/api/v1/faults", params={"lang": "fr"})
    assert response.status_code == 422
    assert "lang" in response.text


async def test_metrics_show_active_faults_and_the_piles_that_are_down(
    faults: Any, station: Any, board: Any, eventually: Any
) -> None:
    began = now() - timedelta(seconds=3)
    await station.report("c1", "c1-p02", "pile_unreachable", since=began)
    await station.report("c2", "c2-p04", "weak_zigbee_link")
    await board.shown("c1-p02", "pile_unreachable")
    await board.shown("c2-p04", "weak_zigbee_link")

    async def exported() -> bool:
        return await faults.metric("station_fault_active", code="weak_zigbee_link") == 1

    await eventually(exported, what="station_fault_active exported")
    assert (
        await faults.metric(
            "station_fault_active",
            code="pile_unreachable",
            severity="major",
            source="c1-p02",
            charger="c1",
            pile="c1-p02",
        )
        == 1
    )
    assert await faults.metric("station_pile_up", pile="c1-p02") == 0
    assert await faults.metric("station_pile_up", pile="c2-p04") == 1  # weak, but reachable
    assert await faults.metric("station_pile_up", pile="c1-p01") == 1
    assert await faults.metric("station_pile_up") == 7  # 2 x 4 piles, one down
    assert (
        await faults.metric(
            "station_fault_detection_latency_seconds_count", stage="detect", code="pile_unreachable"
        )
        == 1
    )
    assert (
        await faults.metric(
            "station_fault_detection_latency_seconds_sum", stage="detect", code="pile_unreachable"
        )
        >= 3
    )

    await station.report("c1", "c1-p02", "pile_unreachable", active=False)
    await board.withdrawn("c1-p02", "pile_unreachable")

    async def back_up() -> bool:
        return await faults.metric("station_pile_up", pile="c1-p02") == 1

    await eventually(back_up, what="c1-p02 up again")
    assert await faults.metric("station_fault_active", code="pile_unreachable") == 0


def test_every_catalogue_language_is_served() -> None:
    assert {language.value for language in Language} == {"zh", "en"}
    assert load_catalogue().get("pile_unreachable") is not None
