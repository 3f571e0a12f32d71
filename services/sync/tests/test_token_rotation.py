"""A token rotated at central: sync says so, keeps every record, and takes the new token
without a restart or an edit of its settings.

Central is a real process; sync runs in this process, lifespan and all. Before this, a
rotation stopped the station's sync with 401 on every try and nothing told the station
what was wrong or how to get going again.
"""

from __future__ import annotations

import stat
from typing import Any

from station_protocol import channels
from station_protocol.central import CentralPaths
from station_protocol.faults import FaultCode
from station_sync.token import TOKEN_FILE
from station_tools.central import bearer
from station_tools.records import sample_record

TOPIC = channels.SERVICE_FAULT.topic(
    service="sync", source="central", code=FaultCode.CENTRAL_TOKEN_REJECTED
)


async def rotate(central_http: Any, station: str) -> str:
    """What an operator does at central: a new token; the old one stops working."""
    answer = await central_http.http.post(
        CentralPaths.station_token(station), headers=bearer(central_http.admin_token)
    )
    assert answer.status_code == 200, answer.text
    assert "station sync token" in answer.json()["install"]  # central says how to install it
    token: str = answer.json()["token"]
    return token


async def test_a_rotated_token_raises_a_fault_keeps_the_backlog_and_is_installed_live(
    central_http: Any,
    outbox: Any,
    make_settings: Any,
    start_sync: Any,
    retained: Any,
    poll: Any,
) -> None:
    station, old_token = await central_http.register()
    central_url = str(central_http.http.base_url).rstrip("/")
    settings = make_settings(central_url, station, old_token)
    first = [sample_record(station) for _ in range(5)]
    later = [sample_record(station) for _ in range(7)]
    outbox.queue(first)

    async with start_sync(settings) as sync:

        async def first_sent() -> bool:
            return outbox.sent() == 5

        await poll(first_sent)
        new_token = await rotate(central_http, station)
        outbox.queue(later)

        raised = await retained.eventually(TOPIC, active=True)
        assert raised.detail["station_id"] == station
        assert raised.detail["token_source"] == "setting"
        assert "401" in raised.detail["last_error"]
        assert new_token not in raised.model_dump_json()
        shown = await sync.status()
        assert shown["token_rejected"] is True and shown["central_token"] == "setting"
        assert outbox.sent() == 5 and len(outbox.rows()) == 12  # the backlog waits, whole
        assert len(await central_http.records(station_id=station)) == 5

        refused = await sync.http.put("/api/v1/sync/central-token", json={"token": "a b"})
        assert refused.status_code == 422
        installed = await sync.http.put("/api/v1/sync/central-token", json={"token": new_token})
        assert installed.status_code == 204 and new_token not in installed.text

        async def drained() -> bool:
            return outbox.sent() == 12

        await poll(drained)
        await retained.eventually(TOPIC, active=False)
        shown = await sync.status()
        assert shown["token_rejected"] is False and shown["central_token"] == "file"
        assert shown["backlog"] == 0
    held = {r["record_id"] for r in await central_http.records(station_id=station)}
    assert held == {r.record_id for r in first + later}
    token_file = settings.data_dir / TOKEN_FILE
    assert token_file.read_text() == new_token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    # A restart with the rotated-out token still in its settings sends with the installed one.
    again = [sample_record(station) for _ in range(3)]
    outbox.queue(again)
    async with start_sync(make_settings(central_url, station, old_token)):

        async def all_sent() -> bool:
            return outbox.sent() == 15

        await poll(all_sent)
    last = await retained.now(TOPIC)
    assert last is None or not last.active
