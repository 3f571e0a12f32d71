"""The charge flow of one pile, event by event (no broker: the flow is pure)."""

from __future__ import annotations

from station_collector.flow import Busy, Phase, PileFlow, Prompt, Stop, Verify
from station_protocol.messages import StopReason

WINDOW = 60.0


def flow() -> PileFlow:
    return PileFlow("c1-p01", WINDOW)


def test_plug_then_swipe_within_the_window_asks_for_verification() -> None:
    pile = flow()
    assert pile.plugged(0.0) == Prompt("card")
    decision = pile.swiped("CARD-1", 59.0)
    assert isinstance(decision, Verify)
    assert decision.card_uid == "CARD-1"
    assert pile.phase is Phase.STARTING


def test_swipe_then_plug_within_the_window_asks_for_verification() -> None:
    pile = flow()
    assert pile.swiped("CARD-1", 0.0) == Prompt("gun")
    decision = pile.plugged(30.0)
    assert isinstance(decision, Verify)
    assert decision.card_uid == "CARD-1"


def test_plug_alone_and_swipe_alone_start_nothing() -> None:
    plug_only = flow()
    plug_only.plugged(0.0)
    assert plug_only.phase is Phase.IDLE
    swipe_only = flow()
    swipe_only.swiped("CARD-1", 0.0)
    assert swipe_only.phase is Phase.IDLE


def test_a_swipe_older_than_the_window_does_not_pair_with_a_later_plug() -> None:
    pile = flow()
    pile.swiped("CARD-1", 0.0)
    assert pile.plugged(WINDOW + 0.1) == Prompt("card")
    assert pile.phase is Phase.IDLE


def test_a_plug_older_than_the_window_does_not_pair_with_a_later_swipe() -> None:
    pile = flow()
    pile.plugged(0.0)
    assert pile.swiped("CARD-1", WINDOW + 0.1) == Prompt("gun")
    assert pile.phase is Phase.IDLE


def charging(card: str = "CARD-1") -> tuple[PileFlow, str]:
    pile = flow()
    pile.plugged(0.0)
    decision = pile.swiped(card, 1.0)
    assert isinstance(decision, Verify)
    pile.started()
    return pile, decision.session_id


def test_a_repeated_read_within_the_repeat_window_is_one_swipe() -> None:
    pile, session_id = charging()
    assert pile.swiped("CARD-1", 1.5) is None  # the reader repeating the starting swipe
    assert pile.phase is Phase.CHARGING
    assert pile.swiped("CARD-1", 3.0) == Stop(session_id, StopReason.LOCAL)


def test_a_repeated_read_while_starting_does_not_start_twice() -> None:
    pile = flow()
    pile.plugged(0.0)
    assert isinstance(pile.swiped("CARD-1", 1.0), Verify)
    assert pile.swiped("CARD-1", 1.2) is None
    assert pile.swiped("CARD-1", 5.0) is None


def test_second_swipe_of_the_same_card_stops_the_session() -> None:
    pile, session_id = charging()
    assert pile.swiped("CARD-1", 100.0) == Stop(session_id, StopReason.LOCAL)
    assert pile.phase is Phase.STOPPING
    assert pile.swiped("CARD-1", 101.0) is None  # still stopping: no second stop


def test_another_card_on_a_charging_pile_is_busy() -> None:
    pile, _ = charging()
    assert pile.swiped("CARD-2", 100.0) == Busy("CARD-2")
    assert pile.phase is Phase.CHARGING


def test_unplugging_mid_charge_stops_with_ev_disconnected() -> None:
    pile, session_id = charging()
    assert pile.unplugged(50.0) == Stop(session_id, StopReason.EV_DISCONNECTED)


def test_a_refused_card_lets_a_new_swipe_pair_with_the_plugged_gun() -> None:
    pile = flow()
    pile.plugged(0.0)
    pile.swiped("BAD", 1.0)
    pile.start_failed(2.0)
    assert pile.phase is Phase.IDLE
    assert isinstance(pile.swiped("GOOD", 3.0), Verify)


def test_after_checkout_a_new_session_needs_a_new_plug() -> None:
    pile, _ = charging()
    pile.swiped("CARD-1", 10.0)
    pile.checked_out()
    assert pile.swiped("CARD-1", 11.0) == Prompt("gun")
    pile.unplugged(12.0)
    assert isinstance(pile.plugged(13.0), Verify)


def test_each_pairing_gets_its_own_session_id() -> None:
    _, first_id = charging()
    _, second_id = charging()
    assert first_id != second_id


def test_resume_takes_up_a_session_only_when_idle() -> None:
    pile = flow()
    assert pile.resume("s-1", "CARD-1")
    assert pile.phase is Phase.CHARGING
    assert pile.swiped("CARD-1", 5.0) == Stop("s-1", StopReason.LOCAL)
    busy, _ = charging()
    assert not busy.resume("s-2", "CARD-9")


def test_a_card_at_the_kiosk_is_never_taken_for_the_readers_echo() -> None:
    pile = PileFlow("c1-p01", WINDOW, repeat_window=1.0)
    pile.plugged(0.0)
    start = pile.swiped("CARD-A", 1.0, reader=False)
    assert isinstance(start, Verify)
    pile.started()
    # The reader would repeat itself within a second; a second kiosk request is meant.
    assert pile.swiped("CARD-A", 1.2, reader=False) == Stop(start.session_id, StopReason.LOCAL)


def test_an_operator_stop_while_starting_is_carried_out_once_the_pile_charges() -> None:
    pile = flow()
    pile.plugged(0.0)
    decision = pile.swiped("CARD-1", 1.0)
    assert isinstance(decision, Verify)

    assert pile.stop_requested(StopReason.OPERATOR) is None
    assert pile.stop_requested(StopReason.INSUFFICIENT_BALANCE) is None

    assert pile.started() == Stop(decision.session_id, StopReason.OPERATOR)
    assert pile.phase is Phase.STOPPING


def test_a_start_that_fails_forgets_the_stop_asked_for_meanwhile() -> None:
    pile = flow()
    pile.plugged(0.0)
    assert isinstance(pile.swiped("CARD-1", 1.0), Verify)
    pile.stop_requested(StopReason.OPERATOR)
    pile.start_failed(2.0)

    again = pile.swiped("CARD-2", 3.0)
    assert isinstance(again, Verify)
    assert pile.started() is None
    assert pile.phase is Phase.CHARGING
