"""The owners' REST APIs inside the station, for what has no bus channel.

verification owns cards and top-ups, billing sessions, receipts and the operator stop,
faults the acknowledgement of a bulletin. The console never writes their databases; it
asks them, and passes their refusals on to its caller with their own words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("station.console.owners")


class OwnerAway(Exception):
    """An owner did not answer (not running, or too slow): the caller gets a 503."""

    def __init__(self, owner: str, error: str) -> None:
        super().__init__(f"{owner} is not answering: {error}")
        self.owner = owner


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def detail(self) -> str:
        """The owner's own explanation of a refusal."""
        if isinstance(self.body, dict):
            detail = self.body.get("detail")
            if isinstance(detail, str):
                return detail
            if detail is not None:
                return str(detail)
        return str(self.body)[:500]


@dataclass(frozen=True)
class Owner:
    """One owner's API: a name for messages, and an HTTP client on its base URL."""

    name: str
    client: httpx.AsyncClient

    async def call(self, method: str, path: str, **kwargs: Any) -> Answer:
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            log.warning("owner unreachable", extra={"owner": self.name, "error": str(exc)})
            raise OwnerAway(self.name, str(exc) or type(exc).__name__) from exc
        if response.status_code >= 500:
            raise OwnerAway(self.name, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return Answer(response.status_code, body)


@dataclass(frozen=True)
class Owners:
    verification: Owner
    billing: Owner
    faults: Owner
