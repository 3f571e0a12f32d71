"""``GET /api/v1/records``: every filter optional, each record with its station and session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from station_protocol.central import CentralPaths
from station_tools.central import CentralApi
from station_tools.records import sample_record

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


async def test_filters_by_station_pile_card_and_time(central: CentralApi) -> None:
    north, north_token = await central.register()
    south, south_token = await central.register()
    card = f"CARD-{north}"
    north_records = [
        sample_record(north, pile_id="c1-p01", card_uid=card, stopped_at=T0),
        sample_record(north, pile_id="c1-p02", card_uid=card, stopped_at=T0 + timedelta(hours=1)),
        sample_record(
            north, pile_id="c1-p01", card_uid="CARD-X", stopped_at=T0 + timedelta(hours=2)
        ),
    ]
    south_records = [
        sample_record(south, pile_id="c1-p01", card_uid=card, stopped_at=T0 + timedelta(hours=3)),
    ]
    await central.outcomes(north, north_token, north_records)
    await central.outcomes(south, south_token, south_records)

    def ids(rows: list[dict[str, object]]) -> list[object]:
        return [row["record_id"] for row in rows]

    n0, n1, n2 = (r.record_id for r in north_records)
    (s0,) = (r.record_id for r in south_records)
    assert ids(await central.records(station_id=north)) == [n0, n1, n2]
    assert ids(await central.records(station_id=north, pile_id="c1-p01")) == [n0, n2]
    assert ids(await central.records(card_uid=card)) == [n0, n1, s0]
    assert ids(await central.records(card_uid=card, station_id=south)) == [s0]
    since = (T0 + timedelta(hours=1)).isoformat()
    assert ids(await central.records(station_id=north, since=since)) == [n1, n2]
    assert ids(await central.records(card_uid=card, since=since, pile_id="c1-p01")) == [s0]
    assert ids(await central.records(station_id=north, limit=2)) == [n0, n1]

    [first] = await central.records(station_id=north, pile_id="c1-p02")
    assert first["station_id"] == north
    assert first["session_id"] == n1
    assert first["total_cost"] == {"excl_vat": "14.81", "incl_vat": "14.81"}


async def test_bad_filters_are_refused(central: CentralApi) -> None:
    naive = await central.http.get(
        "/api/v1/records",
        params={"since": "2026-11-30T08:00:00"},
        headers={"Authorization": f"Bearer {central.admin_token}"},
    )
    zero = await central.http.get(
        "/api/v1/records",
        params={"limit": "0"},
        headers={"Authorization": f"Bearer {central.admin_token}"},
    )
    assert naive.status_code == 422
    assert zero.status_code == 422
    assert await central.records(station_id="nobody-here") == []


async def test_since_is_an_rfc3339_date_time_never_a_unix_time(central: CentralApi) -> None:
    """``AwareDatetime`` alone read ``?since=0.5`` as 1970 and answered every record."""
    station, token = await central.register()
    await central.outcomes(station, token, [sample_record(station, stopped_at=T0)])
    for since in ["0.5", "1700000000", "2026-11-30", "2026-11-30 08:00:00Z"]:
        answer = await central.http.get(
            "/api/v1/records",
            params={"since": since, "station_id": station},
            headers={"Authorization": f"Bearer {central.admin_token}"},
        )
        assert answer.status_code == 422, (since, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["query", "since"]
    assert len(await central.records(station_id=station, since="2026-11-30T16:00:00+08:00")) == 1


async def test_a_record_stopped_at_a_unix_time_is_refused(central: CentralApi) -> None:
    station, token = await central.register()
    record = sample_record(station, stopped_at=T0).model_dump(mode="json")
    record["stopped_at"] = T0.timestamp()
    answer = await central.http.post(
        CentralPaths.records_batch(station),
        json={"records": [record]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][-1] == "stopped_at"
    assert await central.records(station_id=station) == []
