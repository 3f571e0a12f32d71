"""The drop log: each kind of drop logged once, and never a memory a sender can grow."""

from __future__ import annotations

import logging

import pytest

from station_runtime.deliveries import DropLog, Dropped, DropReason


def test_each_drop_is_logged_once_and_the_memory_is_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    drops = DropLog(limit=3)
    with caplog.at_level(logging.WARNING, logger="station.bus.drops"):
        for topic in ("a", "a", "b", "c", "d", "e"):
            drops(Dropped("state", DropReason.BAD_JSON, f"zigbee2mqtt/c1/{topic}"))
    warned = [record.getMessage() for record in caplog.records]
    assert warned.count("message dropped") == 3  # a, b, c: once each; d, e past the limit
    assert len(drops.seen) == 3
    assert any(message.startswith("too many distinct dropped") for message in warned)
