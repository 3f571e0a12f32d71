"""Reading bus messages: a message that cannot be read is counted, logged and dropped.

Never an exception out of a handler for bad input: one broken collector must not be able to
stop the faults service from announcing the faults of every other one.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from station_faults.metrics import FaultMetrics, MessageKind
from station_runtime.deliveries import Incoming

log = logging.getLogger("station.faults.decoding")

M = TypeVar("M", bound=BaseModel)


def read(model: type[M], message: Incoming, kind: MessageKind, metrics: FaultMetrics) -> M | None:
    try:
        return model.model_validate_json(message.payload)
    except ValidationError as exc:
        drop(
            message,
            kind,
            "malformed",
            metrics,
            str(exc.errors(include_url=False, include_input=False)[:3]),
        )
        return None


def drop(
    message: Incoming, kind: MessageKind, reason: str, metrics: FaultMetrics, error: str = ""
) -> None:
    metrics.dropped(kind, reason)
    log.warning(
        "message dropped",
        extra={"topic": message.topic, "kind": kind.value, "reason": reason, "error": error},
    )
