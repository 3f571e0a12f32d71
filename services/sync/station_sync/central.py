"""Sync's client of the central server: one HTTP request per batch.

The batch body is built from the outbox payloads as they are (each is already the record's
JSON), so a record goes out byte for byte as billing queued it. Anything short of a
readable 200 answer is a :class:`CentralError`: the caller keeps the records and retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from station_protocol.central import BatchReply, CentralPaths

ERROR_BODY_LIMIT = 200


class CentralError(Exception):
    """The batch did not get through (unreachable, refused, or an unreadable answer)."""


@dataclass(frozen=True)
class CentralClient:
    http: httpx.AsyncClient
    """Owned by the lifespan: base URL, timeout and the station's bearer token."""
    station_id: str

    async def send(self, payloads: Sequence[str]) -> BatchReply:
        body = '{"records":[' + ",".join(payloads) + "]}"
        try:
            response = await self.http.post(
                CentralPaths.records_batch(self.station_id),
                content=body.encode(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise CentralError(f"central unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise CentralError(
                f"central answered {response.status_code}: {response.text[:ERROR_BODY_LIMIT]}"
            )
        try:
            return BatchReply.model_validate_json(response.content)
        except ValidationError as exc:
            raise CentralError(
                f"unreadable answer from central: {exc.error_count()} errors"
            ) from exc
