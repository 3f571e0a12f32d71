"""Central is idempotent by record id: a record sent twice is stored once, never changed."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from station_protocol.central import MAX_BATCH, CentralPaths
from station_protocol.ocpi import Price
from station_protocol.records import ChargingRecord
from station_tools.central import CentralApi, batch_body, bearer
from station_tools.records import sample_record


async def test_the_same_batch_twice_is_stored_once(central: CentralApi) -> None:
    station, token = await central.register()
    batch = [sample_record(station, pile_id=f"c1-p0{i}") for i in range(1, 6)]

    assert await central.outcomes(station, token, batch) == ["stored"] * 5
    assert await central.outcomes(station, token, batch) == ["duplicate"] * 5

    stored = await central.records(station_id=station)
    assert sorted(r["record_id"] for r in stored) == sorted(r.record_id for r in batch)
    assert await central.metric("station_central_records_total", 'outcome="stored"') == 5
    assert await central.metric("station_central_records_total", 'outcome="duplicate"') == 5


async def test_a_batch_half_known_stores_only_the_new_half(central: CentralApi) -> None:
    station, token = await central.register()
    old = [sample_record(station) for _ in range(3)]
    new = [sample_record(station) for _ in range(2)]
    await central.outcomes(station, token, old)

    outcomes = await central.outcomes(station, token, [old[0], new[0], old[1], new[1], old[2]])

    assert outcomes == ["duplicate", "stored", "duplicate", "stored", "duplicate"]
    assert len(await central.records(station_id=station)) == 5


async def test_changed_content_under_a_stored_id_is_a_conflict_and_changes_nothing(
    central: CentralApi, caplog: pytest.LogCaptureFixture
) -> None:
    station, token = await central.register()
    original = sample_record(station, energy="10.000")
    forged = original.model_copy(
        update={"total_cost": Price(excl_vat=Decimal("0.01"), incl_vat=Decimal("0.01"))}
    )
    other = sample_record(station)
    await central.outcomes(station, token, [original])

    with caplog.at_level(logging.WARNING, logger="station.central.records"):
        outcomes = await central.outcomes(station, token, [forged, other])

    assert outcomes == ["conflict", "stored"]
    put = await central.http.put(
        CentralPaths.record(station, original.record_id),
        content=forged.model_dump_json(),
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert put.status_code == 409
    [kept] = await central.records(station_id=station, pile_id=original.pile_id, limit=1)
    assert kept["record_id"] == original.record_id
    assert kept["total_cost"] == {"excl_vat": "12.00", "incl_vat": "12.00"}
    refused = [r for r in caplog.records if getattr(r, "record_id", None) == original.record_id]
    assert refused and refused[0].levelno == logging.WARNING
    assert await central.metric("station_central_records_total", 'outcome="conflict"') == 2


async def test_one_record_by_put_answers_201_then_200(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    station, token = await central.register()
    record = sample_record(station)
    path = CentralPaths.record(station, record.record_id)
    headers = {**bearer(token), "Content-Type": "application/json"}

    first = await central.http.put(path, content=record.model_dump_json(), headers=headers)
    again = await central.http.put(path, content=record.model_dump_json(), headers=headers)
    wrong_path = await central.http.put(
        CentralPaths.record(station, "another-id"),
        content=record.model_dump_json(),
        headers=headers,
    )

    assert (first.status_code, first.json()["outcome"]) == (201, "stored")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert wrong_path.status_code == 422


async def test_the_same_record_spelled_otherwise_is_a_duplicate(central: CentralApi) -> None:
    """Money ``12.00`` vs ``12.0``, a time in UTC vs +08:00: the same record, not a conflict."""
    station, token = await central.register()
    record = sample_record(station, energy="10")
    shanghai = timezone(timedelta(hours=8))
    respelled = ChargingRecord.model_validate(
        {
            **record.model_dump(),
            "total_cost": {"excl_vat": "12.0", "incl_vat": "12.000"},
            "stopped_at": record.stopped_at.astimezone(shanghai),
        }
    )
    assert record.total_cost.excl_vat == Decimal("12.00")

    assert await central.outcomes(station, token, [record]) == ["stored"]
    assert await central.outcomes(station, token, [respelled]) == ["duplicate"]


async def test_one_id_twice_in_one_batch(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    station, token = await central.register()
    record = sample_record(station)
    changed = record.model_copy(update={"card_uid": "CARD-OTHER"})

    outcomes = await central.outcomes(station, token, [record, record, changed])

    assert outcomes == ["stored", "duplicate", "conflict"]
    [stored] = await central.records(station_id=station)
    assert stored["card_uid"] == record.card_uid


async def test_money_and_times_come_back_exact(central: CentralApi) -> None:
    station, token = await central.register()
    stopped = datetime(2026, 11, 30, 6, 30, 15, 123456, tzinfo=UTC)
    record = sample_record(station, energy="12.345", stopped_at=stopped)
    extended = ChargingRecord.model_validate(
        {
            **record.model_dump(),
            "total_energy_cost": {"excl_vat": "14.81", "incl_vat": "14.81"},
            "total_time": "0.75",
            "charging_periods": [
                {
                    "start_date_time": "2026-11-30T05:45:15Z",
                    "dimensions": [{"type": "ENERGY", "volume": "12.345"}],
                }
            ],
            "a_field_of_a_newer_station": "kept",
        }
    )
    await central.outcomes(station, token, [extended])

    [back] = await central.records(station_id=station)

    assert back["total_energy"] == "12.345"
    assert back["total_cost"] == {"excl_vat": "14.81", "incl_vat": "14.81"}
    assert back["total_energy_cost"] == {"excl_vat": "14.81", "incl_vat": "14.81"}
    assert back["total_time"] == "0.75"
    assert datetime.fromisoformat(back["stopped_at"]) == stopped
    assert back["a_field_of_a_newer_station"] == "kept"
    assert back["charging_periods"] == [
        {
            "start_date_time": "2026-11-30T05:45:15Z",
            "dimensions": [{"type": "ENERGY", "volume": "12.345"}],
        }
    ]
    assert datetime.fromisoformat(back["received_at"]) >= stopped


async def test_bad_batches_get_clear_answers(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    station, token = await central.register()
    other_station, _ = await central.register()
    path = CentralPaths.records_batch(station)
    headers = {**bearer(token), "Content-Type": "application/json"}

    not_json = await central.http.post(path, content=b"{records", headers=headers)
    empty = await central.http.post(path, content=b'{"records": []}', headers=headers)
    naive = sample_record(station).model_dump(mode="json")
    naive["stopped_at"] = "2026-11-30T06:00:00"
    naive_time = await central.http.post(path, json={"records": [naive]}, headers=bearer(token))
    negative = sample_record(station).model_dump(mode="json")
    negative["total_energy"] = "-1"
    negative_energy = await central.http.post(
        path, json={"records": [negative]}, headers=bearer(token)
    )
    too_many = await central.http.post(
        path, content=batch_body([sample_record(station)] * (MAX_BATCH + 1)), headers=headers
    )
    foreign = await central.send(station, token, [sample_record(other_station)])

    assert not_json.status_code == 422
    assert empty.status_code == 422
    assert naive_time.status_code == 422
    assert negative_energy.status_code == 422
    assert too_many.status_code == 413
    assert foreign.status_code == 403
    assert await central.records(station_id=station) == []
    assert await central.records(station_id=other_station) == []
