"""The central server's API as a station and an operator use it (tests, benchmarks, launcher).

Thin on purpose: paths and payloads come from ``station_protocol.central``; this only says
who calls with which token, so tests read like what a station or an operator does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from station_protocol.central import CentralPaths
from station_protocol.records import ChargingRecord, record_json


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def batch_body(records: Sequence[ChargingRecord]) -> bytes:
    """A batch as sync sends it: the queued payloads, as they are."""
    return ('{"records":[' + ",".join(record_json(r) for r in records) + "]}").encode()


def prometheus_sample(text: str, name: str, labels: str | None = None) -> float:
    """A sample of a Prometheus exposition (every label set summed unless ``labels``)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, label_text = series.partition("{")
        if metric == name and (labels is None or label_text.rstrip("}") == labels):
            total += float(value)
    return total


def register_station(base_url: str, admin_token: str, station_id: str) -> str:
    """Register ``station_id`` at central (blocking); returns its token.

    A station central knows already (a restarted one-machine station) gets a new token.
    """
    base = base_url.rstrip("/")
    response = httpx.post(
        base + CentralPaths.STATIONS,
        json={"station_id": station_id},
        headers=bearer(admin_token),
        timeout=10,
    )
    if response.status_code == httpx.codes.CONFLICT:
        response = httpx.post(
            base + CentralPaths.station_token(station_id), headers=bearer(admin_token), timeout=10
        )
    response.raise_for_status()
    return str(response.json()["token"])


@dataclass
class CentralApi:
    """``http`` is a client with central's base URL (or an ASGI transport to its app)."""

    http: httpx.AsyncClient
    admin_token: str

    async def register(self, station_id: str | None = None) -> tuple[str, str]:
        """A new station; returns its id and its token."""
        station_id = station_id or f"station-{uuid.uuid4().hex[:8]}"
        response = await self.http.post(
            CentralPaths.STATIONS, json={"station_id": station_id}, headers=bearer(self.admin_token)
        )
        assert response.status_code == 201, response.text
        return station_id, str(response.json()["token"])

    async def send(
        self, station_id: str, token: str, records: Sequence[ChargingRecord]
    ) -> httpx.Response:
        return await self.http.post(
            CentralPaths.records_batch(station_id),
            content=batch_body(records),
            headers={**bearer(token), "Content-Type": "application/json"},
        )

    async def outcomes(
        self, station_id: str, token: str, records: Sequence[ChargingRecord]
    ) -> list[str]:
        """The per-record outcomes of one batch (the batch must be answered 200)."""
        response = await self.send(station_id, token, records)
        assert response.status_code == 200, response.text
        return [result["outcome"] for result in response.json()["results"]]

    async def records(self, token: str | None = None, **query: Any) -> list[dict[str, Any]]:
        """``GET /api/v1/records`` as the admin (or as ``token``'s station)."""
        response = await self.http.get(
            CentralPaths.RECORDS, params=query, headers=bearer(token or self.admin_token)
        )
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    async def metric(self, name: str, labels: str | None = None) -> float:
        return prometheus_sample((await self.http.get("/metrics")).text, name, labels)
