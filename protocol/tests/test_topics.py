from __future__ import annotations

import pytest

from station_protocol import channels
from station_protocol.channels import ZigbeeChannels, shared, unshare
from station_protocol.ids import Layout, charger_of, pile_id
from station_protocol.zigbee import BridgeState, OnlineState, PileState


def test_pile_lives_under_its_chargers_base_topic() -> None:
    topics = ZigbeeChannels.for_charger("c1")
    assert topics.pile_state.topic(pile="c1-p01") == "zigbee2mqtt/c1/c1-p01"
    assert topics.pile_set.topic(pile="c1-p01") == "zigbee2mqtt/c1/c1-p01/set"
    assert topics.pile_availability.topic(pile="c1-p01") == "zigbee2mqtt/c1/c1-p01/availability"
    assert topics.bridge_state.topic() == "zigbee2mqtt/c1/bridge/state"


@pytest.mark.parametrize(
    ("topic", "kind", "device"),
    [
        ("zigbee2mqtt/c1/c1-p03", "pile_state", "c1-p03"),
        ("zigbee2mqtt/c1/c1-p03/availability", "pile_availability", "c1-p03"),
        ("zigbee2mqtt/c1/c1-p03/set", "pile_set", "c1-p03"),
        ("zigbee2mqtt/c1/bridge/state", "bridge_state", None),
        ("zigbee2mqtt/c1/bridge/event", "bridge_event", None),
        ("zigbee2mqtt/c1/bridge/devices", None, None),
        ("zigbee2mqtt/c2/c2-p01", None, None),
        ("zigbee2mqtt/c1/c1-p03/weird/deep", None, None),
    ],
)
def test_each_zigbee_topic_belongs_to_one_channel_at_most(
    topic: str, kind: str | None, device: str | None
) -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    every = [
        zigbee.pile_state,
        zigbee.pile_availability,
        zigbee.pile_set,
        zigbee.bridge_state,
        zigbee.bridge_event,
    ]
    matched = [channel for channel in every if channel.parse(topic) is not None]
    assert [channel.name for channel in matched] == ([kind] if kind else [])
    if matched:
        assert matched[0].param(topic, "pile") == device


def test_bridge_responses_are_named_by_their_request() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    assert zigbee.bridge_response("device/rename") == "zigbee2mqtt/c1/bridge/response/device/rename"
    assert zigbee.bridge_request("permit_join") == "zigbee2mqtt/c1/bridge/request/permit_join"


def test_layout_names_every_pile() -> None:
    layout = Layout.parse("4x12")
    piles = layout.pile_ids()
    assert len(piles) == 48
    assert piles[0] == "c1-p01" and piles[-1] == "c4-p12"
    assert charger_of("c3-p07") == "c3"
    assert pile_id(2, 5) == "c2-p05"
    with pytest.raises(ValueError):
        Layout.parse("4by12")


def test_session_topics_round_trip() -> None:
    topic = channels.PILE_SESSION.topic(pile="c1-p02")
    assert channels.PILE_SESSION.param(topic, "pile") == "c1-p02"
    assert channels.PILE_SESSION.param("station/v1/sessions/garbage", "pile") is None
    assert unshare(shared("g", "a/b")) == "a/b"


def test_pile_state_keeps_unknown_fields_and_exact_energy() -> None:
    state = PileState.model_validate_json(b'{"energy": 12.345, "vendor_x": 1, "gun": "plugged"}')
    assert str(state.energy) == "12.345"
    assert state.model_extra == {"vendor_x": 1}
    assert b'"energy":12.345' in state.model_dump_json(exclude_none=True).encode()


def test_bridge_state_accepts_both_generations() -> None:
    assert BridgeState.parse(b'{"state":"online"}').state == OnlineState.ONLINE
    assert BridgeState.parse(b"offline").state == OnlineState.OFFLINE
