"""The board word of a pile, from what its collector knows (pure, no broker)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from station_collector.board_state import PileFacts, board_state
from station_collector.flow import Phase
from station_protocol.messages import PileBoardState

IDLE = PileFacts(
    phase=Phase.IDLE, up=True, out_of_order=False, in_maintenance=False, gun_plugged=False
)


def test_an_idle_pile_that_answers_is_available() -> None:
    assert board_state(IDLE) is PileBoardState.AVAILABLE


@pytest.mark.parametrize(
    ("facts", "word"),
    [
        (replace(IDLE, gun_plugged=True), PileBoardState.PLUGGED),
        (replace(IDLE, phase=Phase.STARTING, gun_plugged=True), PileBoardState.PLUGGED),
        (replace(IDLE, phase=Phase.CHARGING, gun_plugged=True), PileBoardState.CHARGING),
        (replace(IDLE, phase=Phase.STOPPING, gun_plugged=True), PileBoardState.FINISHING),
    ],
)
def test_the_charge_flow_shows_as_plugged_charging_then_finishing(
    facts: PileFacts, word: PileBoardState
) -> None:
    assert board_state(facts) is word


def test_a_pile_that_reports_an_error_is_faulted_even_with_the_gun_in() -> None:
    assert board_state(replace(IDLE, out_of_order=True, gun_plugged=True)) is (
        PileBoardState.FAULTED
    )


def test_a_pile_that_does_not_answer_is_offline_whatever_it_last_said() -> None:
    for phase in (Phase.IDLE, Phase.STARTING, Phase.CHARGING):
        facts = replace(IDLE, phase=phase, up=False, out_of_order=True, gun_plugged=True)
        assert board_state(facts) is PileBoardState.OFFLINE


def test_a_stop_under_way_shows_as_finishing_even_when_the_pile_is_silent() -> None:
    assert board_state(replace(IDLE, phase=Phase.STOPPING, up=False)) is PileBoardState.FINISHING


@pytest.mark.parametrize(
    "facts",
    [
        replace(IDLE, in_maintenance=True),
        replace(IDLE, in_maintenance=True, up=False),
        replace(IDLE, in_maintenance=True, out_of_order=True),
        replace(IDLE, in_maintenance=True, gun_plugged=True),
    ],
)
def test_maintenance_hides_available_plugged_faulted_and_offline(facts: PileFacts) -> None:
    assert board_state(facts) is PileBoardState.MAINTENANCE


def test_a_charge_running_in_maintenance_shows_as_charging_then_finishing() -> None:
    charging = replace(IDLE, phase=Phase.CHARGING, in_maintenance=True, gun_plugged=True)
    assert board_state(charging) is PileBoardState.CHARGING
    assert board_state(replace(charging, up=False)) is PileBoardState.CHARGING
    assert board_state(replace(charging, phase=Phase.STOPPING)) is PileBoardState.FINISHING
