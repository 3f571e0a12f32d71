"""Typed channels: one declaration gives the topic, the filter, the parser and the payload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from station_protocol import channels
from station_protocol.channels import STATION_CHANNELS, PayloadTooLarge, ZigbeeChannels
from station_protocol.messages import PileSession, SessionStatus, VerificationReply
from station_protocol.zigbee import ChargeCommand, DisplayCommand, OnlineState, PileState

SAMPLE = {"pile": "c2-p07", "charger": "c2", "source": "c2-p07", "code": "x", "service": "sync"}


@pytest.mark.parametrize("channel", STATION_CHANNELS, ids=lambda channel: channel.pattern)
def test_every_station_topic_round_trips_through_its_channel(
    channel: channels.Channel[object],
) -> None:
    params = {name: SAMPLE[name] for name in channel.params}
    topic = channel.topic(**params)
    assert topic.startswith("station/v1/")
    assert channel.parse(topic) == params
    assert channel.parse(topic + "/deeper") is None


def test_station_channels_are_declared_once() -> None:
    patterns = [channel.pattern for channel in STATION_CHANNELS]
    assert len(patterns) == len(set(patterns))


def test_a_parameter_is_what_its_name_says() -> None:
    assert channels.PILE_SESSION.parse("station/v1/sessions/c1-p02") == {"pile": "c1-p02"}
    assert channels.PILE_SESSION.parse("station/v1/sessions/garbage") is None
    assert channels.COLLECTOR_STOP.parse("station/v1/collectors/x9/stop") is None
    with pytest.raises(ValueError, match="not a valid pile"):
        channels.PILE_SESSION.topic(pile="c1-p02/#")
    with pytest.raises(ValueError, match="needs"):
        channels.PILE_SESSION.topic()


def test_filters_fix_what_is_given_and_wildcard_the_rest() -> None:
    assert channels.PILE_SESSION.filter() == "station/v1/sessions/+"
    assert channels.COLLECTOR_FAULT.filter(charger="c1") == "station/v1/collectors/c1/faults/+/+"
    with pytest.raises(ValueError, match="no parameter"):
        channels.PILE_SESSION.filter(charger="c1")


def test_a_payload_is_decoded_by_its_channel_and_encoded_without_nulls() -> None:
    session = PileSession(
        session_id="s-1",
        pile_id="c1-p01",
        card_uid="CARD",
        status=SessionStatus.ACTIVE,
        started_at=datetime(2026, 12, 4, 8, tzinfo=UTC),
    )
    wire = channels.PILE_SESSION.encode(session)
    assert b"null" not in wire
    assert channels.PILE_SESSION.decode(wire) == session
    with pytest.raises(ValidationError):
        channels.PILE_SESSION.decode(b'{"v": "v1", "session_id": 3}')


def test_a_request_channel_knows_its_reply() -> None:
    reply = VerificationReply(session_id="s", card_uid="C", result="accepted")
    wire = channels.VERIFICATION.encode_reply(reply)
    assert channels.VERIFICATION.decode_reply(wire) == reply


def test_zigbee_channels_live_under_the_chargers_base() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    assert zigbee.pile_state.topic(pile="c1-p01") == "zigbee2mqtt/c1/c1-p01"
    assert zigbee.pile_set.topic(pile="c1-p01") == "zigbee2mqtt/c1/c1-p01/set"
    assert zigbee.pile_availability.filter() == "zigbee2mqtt/c1/+/availability"
    assert zigbee.bridge_state.topic() == "zigbee2mqtt/c1/bridge/state"
    assert zigbee.pile_state.parse("zigbee2mqtt/c1/bridge") is None
    assert zigbee.bridge_state.decode(b"offline").state is OnlineState.OFFLINE
    assert zigbee.bridge_state.decode(b'{"state":"online"}').state is OnlineState.ONLINE


def test_pile_commands_are_one_channel_of_several_shapes() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    start = ChargeCommand(charge="start", session_id="s", max_current=32)
    assert zigbee.pile_set.decode(zigbee.pile_set.encode(start)) == start
    shown = zigbee.pile_set.decode(b'{"display": {"lines": ["hi"]}}')
    assert isinstance(shown, DisplayCommand)


def test_an_oversized_pile_state_is_refused_unread() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    assert zigbee.pile_state.decode(b'{"energy": 1.5}') == PileState(energy="1.5")
    with pytest.raises(PayloadTooLarge):
        zigbee.pile_state.decode(b"{" + b" " * 20_000 + b"}")
