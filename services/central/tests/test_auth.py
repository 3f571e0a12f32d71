"""Tokens: a station writes and reads only its own records; only the admin makes stations."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from station_protocol.central import CentralPaths
from station_tools.central import CentralApi, bearer
from station_tools.records import sample_record


async def test_no_token_or_a_wrong_token_is_401(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    station, token = await central.register()
    batch = [sample_record(station)]

    missing = await central.http.post(CentralPaths.records_batch(station), json={"records": []})
    wrong = await central.send(station, token + "x", batch)
    basic = await central.http.get(CentralPaths.RECORDS, headers={"Authorization": "Basic eDp5"})

    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert basic.status_code == 401
    assert await central.records(station_id=station) == []
    assert await central.metric("station_central_refused_calls_total", 'status="401"') == 3


async def test_a_station_token_writes_only_its_own_station(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    first, first_token = await central.register()
    second, _ = await central.register()

    into_other = await central.send(second, first_token, [sample_record(second)])
    as_admin = await central.send(first, central.admin_token, [sample_record(first)])

    assert into_other.status_code == 403
    assert as_admin.status_code == 403, "the admin token is not a station's: it writes nothing"
    assert await central.records(station_id=second) == []
    assert await central.records(station_id=first) == []


async def test_a_station_reads_only_its_own_records(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    first, first_token = await central.register()
    second, second_token = await central.register()
    await central.outcomes(first, first_token, [sample_record(first)])
    await central.outcomes(second, second_token, [sample_record(second)])

    own = await central.records(first_token)
    other = await central.http.get(
        CentralPaths.RECORDS, params={"station_id": second}, headers=bearer(first_token)
    )

    assert [r["station_id"] for r in own] == [first]
    assert other.status_code == 403
    assert {r["station_id"] for r in await central.records()} >= {first, second}


async def test_only_the_admin_registers_stations(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    station, token = await central.register()

    anonymous = await central.http.post(CentralPaths.STATIONS, json={"station_id": "intruder"})
    by_station = await central.http.post(
        CentralPaths.STATIONS, json={"station_id": "intruder"}, headers=bearer(token)
    )
    again = await central.http.post(
        CentralPaths.STATIONS, json={"station_id": station}, headers=bearer(central.admin_token)
    )
    bad_id = await central.http.post(
        CentralPaths.STATIONS, json={"station_id": "../etc"}, headers=bearer(central.admin_token)
    )
    listed = await central.http.get(CentralPaths.STATIONS, headers=bearer(central.admin_token))

    assert anonymous.status_code == 401
    assert by_station.status_code == 403
    assert again.status_code == 409
    assert bad_id.status_code == 422
    assert [s["station_id"] for s in listed.json()] == [station]


async def test_tokens_are_stored_hashed_and_can_be_renewed(
    central_on_sqlite: CentralApi, tmp_path: Path
) -> None:
    central = central_on_sqlite
    station, old_token = await central.register()

    with sqlite3.connect(tmp_path / "central.db") as db:
        stored = db.execute("SELECT token_hash FROM central_stations").fetchall()
    renewed = await central.http.post(
        CentralPaths.station_token(station), headers=bearer(central.admin_token)
    )
    new_token = renewed.json()["token"]
    unknown = await central.http.post(
        CentralPaths.station_token("nobody"), headers=bearer(central.admin_token)
    )

    assert stored == [(hashlib.sha256(old_token.encode()).hexdigest(),)]
    assert renewed.status_code == 200 and new_token != old_token
    assert unknown.status_code == 404
    assert (await central.send(station, old_token, [sample_record(station)])).status_code == 401
    assert await central.outcomes(station, new_token, [sample_record(station)]) == ["stored"]
