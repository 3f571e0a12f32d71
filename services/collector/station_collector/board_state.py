"""One word for a pile on the console's board, from what its collector knows of it.

Pure, so that the precedence of the words (a charge running beats maintenance, a pile that
does not answer is offline whatever it last said) is decided and tested in one place; the
collector gathers the facts, :mod:`station_collector.status` publishes the word.
"""

from __future__ import annotations

from dataclasses import dataclass

from station_collector.flow import Phase
from station_protocol.messages import PileBoardState


@dataclass(frozen=True)
class PileFacts:
    """What the collector knows of one pile at one moment."""

    phase: Phase
    up: bool
    """Answers breath frames (and its Zigbee2MQTT bridge is online)."""
    out_of_order: bool
    """Reports an error, or its meter cannot be believed: no charge may start on it."""
    in_maintenance: bool
    gun_plugged: bool


def board_state(facts: PileFacts) -> PileBoardState:
    """The pile's board word.

    A stop under way and a running charge are what an operator needs to see first, even in
    maintenance (the session finishes normally there). Maintenance then hides every other
    word: an operator who switched the pile off expects ``maintenance``, not ``offline``.
    A pile that does not answer is ``offline`` even if a charge runs on it: its collector
    no longer knows what the pile does.
    """
    if facts.phase is Phase.STOPPING:
        return PileBoardState.FINISHING
    if not facts.up and not facts.in_maintenance:
        return PileBoardState.OFFLINE
    if facts.phase is Phase.CHARGING:
        return PileBoardState.CHARGING
    if facts.in_maintenance:
        return PileBoardState.MAINTENANCE
    if facts.out_of_order:
        return PileBoardState.FAULTED
    if facts.phase is Phase.STARTING or facts.gun_plugged:
        return PileBoardState.PLUGGED
    return PileBoardState.AVAILABLE
