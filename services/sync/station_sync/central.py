"""Sync's client of the central server: one HTTP request per batch.

The batch body is built from the outbox payloads as they are (each is already the record's
JSON), so a record goes out byte for byte as billing queued it. Anything short of a
readable 200 answer is a :class:`CentralError`: the caller keeps the records and retries.
A 401 is a :class:`TokenRejected`: central does not know the token (it was rotated), which
retrying alone never mends, so it raises its own fault. The token is read for each batch
(:class:`~station_sync.token.CentralToken`), so an installed one is used at the next try.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from station_protocol.central import BatchReply, CentralPaths
from station_sync.token import CentralToken

ERROR_BODY_LIMIT = 200


class CentralError(Exception):
    """The batch did not get through (unreachable, refused, or an unreadable answer)."""


class TokenRejected(CentralError):
    """Central answered 401: the station's token is unknown there (rotated, or wrong)."""


@dataclass(frozen=True)
class CentralClient:
    http: httpx.AsyncClient
    """Owned by the lifespan: base URL and timeout."""
    station_id: str
    token: CentralToken

    async def send(self, payloads: Sequence[str]) -> BatchReply:
        body = '{"records":[' + ",".join(payloads) + "]}"
        headers = {"Content-Type": "application/json"}
        token = self.token.current()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = await self.http.post(
                CentralPaths.records_batch(self.station_id),
                content=body.encode(),
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise CentralError(f"central unreachable: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 401:
            raise TokenRejected(
                f"central answered 401 (token {self.token.source.value}): "
                f"{response.text[:ERROR_BODY_LIMIT]}"
            )
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
