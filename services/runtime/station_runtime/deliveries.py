"""What a typed subscription hands its handler, and what the bus does with a bad message.

Every inbound message is decoded once, by its channel, before any handler sees it. A message
that cannot be used (a topic whose parameters are not what the channel says, an oversized
payload, bad JSON, a payload of the wrong shape) is dropped here: logged, and counted
through the service's :data:`DropSink` in its own ``station_<service>_dropped_messages``
metric, so that one broken or hostile client can never make a handler raise.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from station_protocol.channels import Channel, PayloadTooLarge

log = logging.getLogger("station.bus.drops")

M = TypeVar("M")


@dataclass(frozen=True)
class Incoming:
    """A message as it came off the wire."""

    topic: str
    payload: bytes
    retain: bool = False
    response_topic: str | None = None
    correlation: bytes | None = None


@dataclass(frozen=True)
class Delivery(Generic[M]):
    """A decoded message: its model, the parameters of its topic, and the raw message."""

    body: M
    params: Mapping[str, str]
    incoming: Incoming

    @property
    def topic(self) -> str:
        return self.incoming.topic

    @property
    def retained(self) -> bool:
        """Sent from the broker's store on subscribing, not published just now."""
        return self.incoming.retain


@dataclass(frozen=True)
class Cleared:
    """A retained message deleted (an empty payload): the standing word on a topic withdrawn."""

    params: Mapping[str, str]
    incoming: Incoming

    @property
    def topic(self) -> str:
        return self.incoming.topic


class DropReason(StrEnum):
    BAD_TOPIC = "bad_topic"
    """The topic matched the subscription but its parameters are not what the channel says."""
    OVERSIZED = "oversized"
    BAD_JSON = "bad_json"
    INVALID = "invalid"
    """JSON, but not the channel's shape (a missing field, a wrong type, an impossible value)."""
    UNSOLICITED = "unsolicited"
    """A reply to no question this client has open: unknown or already answered correlation
    data, or one that names another session or card than the question did."""


@dataclass(frozen=True)
class Dropped:
    """One message the bus (or a handler, through :meth:`Bus.drop`) refused to use."""

    kind: str
    """What the message claimed to be: its channel's name unless the subscription said."""
    reason: str
    topic: str
    error: str = ""
    params: Mapping[str, str] = field(default_factory=dict)


DropSink = Callable[[Dropped], None]
"""Counts a drop in the service's own metric (each service keeps its own label names)."""

Handler = Callable[[Delivery[M]], Awaitable[None]]
ClearHandler = Callable[[Cleared], Awaitable[None]]


@dataclass(frozen=True)
class Decoded(Generic[M]):
    delivery: Delivery[M] | None = None
    cleared: Cleared | None = None
    dropped: Dropped | None = None


def decode(channel: Channel[M], incoming: Incoming, kind: str) -> Decoded[M]:
    """Read ``incoming`` as a message of ``channel``; never raises for bad input."""
    params = channel.parse(incoming.topic)
    if params is None:
        return Decoded(dropped=Dropped(kind, DropReason.BAD_TOPIC, incoming.topic))
    if not incoming.payload and channel.retain:
        return Decoded(cleared=Cleared(params, incoming))
    try:
        body = channel.decode(incoming.payload)
    except PayloadTooLarge as exc:
        return Decoded(
            dropped=Dropped(kind, DropReason.OVERSIZED, incoming.topic, str(exc), params)
        )
    except ValidationError as exc:
        reason = DropReason.BAD_JSON if _is_json_error(exc) else DropReason.INVALID
        return Decoded(dropped=Dropped(kind, reason, incoming.topic, _first_error(exc), params))
    except (ValueError, UnicodeDecodeError) as exc:
        return Decoded(dropped=Dropped(kind, DropReason.BAD_JSON, incoming.topic, str(exc), params))
    return Decoded(delivery=Delivery(body, params, incoming))


def _is_json_error(exc: ValidationError) -> bool:
    return any(error["type"] == "json_invalid" for error in exc.errors())


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


@dataclass
class DropLog:
    """Logs each kind of drop once per topic, then only counts it: a flood of one bad
    message must not become a flood of log lines."""

    seen: set[tuple[str, str, str]] = field(default_factory=set)
    limit: int = 10_000
    """Distinct (kind, reason, topic) remembered: topics are the sender's to choose, so a
    hostile client must not grow this without end. Past it, new ones are logged at debug."""

    def __call__(self, dropped: Dropped) -> None:
        key = (dropped.kind, dropped.reason, dropped.topic)
        first = key not in self.seen and len(self.seen) < self.limit
        if first:
            self.seen.add(key)
            if len(self.seen) == self.limit:
                log.warning(
                    "too many distinct dropped messages: further ones are logged at debug "
                    "only (they are still counted)",
                    extra={"limit": self.limit},
                )
        fields: dict[str, Any] = {
            "kind": dropped.kind,
            "reason": dropped.reason,
            "topic": dropped.topic,
            "error": dropped.error,
            **dict(dropped.params),
        }
        fields = {_log_field(name): value for name, value in fields.items()}
        log.log(logging.WARNING if first else logging.DEBUG, "message dropped", extra=fields)


def _log_field(name: str) -> str:
    """The log field a topic parameter goes in (the station's ids: ``pile_id``...)."""
    return {"pile": "pile_id", "charger": "collector"}.get(name, name)


def no_count(_: Dropped) -> None:
    """For a bus with no metric of its own (tools, tests)."""
