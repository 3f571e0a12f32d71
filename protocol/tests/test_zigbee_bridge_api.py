"""The Zigbee2MQTT 2.x bridge API as the station models it: requests, answers, events."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from station_protocol.channels import ZigbeeChannels
from station_protocol.zigbee import (
    BridgeEvent,
    BridgeEventType,
    BridgeInfo,
    DeviceRemoveRequest,
    DeviceRenameData,
    DeviceRenameRequest,
    InterviewStatus,
    PermitJoinRequest,
    new_ieee_address,
    new_transaction,
    transaction_of,
)


def test_each_call_has_its_request_and_response_topic() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    assert zigbee.permit_join.request.topic() == "zigbee2mqtt/c1/bridge/request/permit_join"
    assert zigbee.permit_join.response.topic() == "zigbee2mqtt/c1/bridge/response/permit_join"
    rename = zigbee.device_rename
    assert rename.request.topic() == zigbee.bridge_request("device/rename")
    assert rename.response.topic() == zigbee.bridge_response("device/rename")
    assert zigbee.device_remove.response.topic() == "zigbee2mqtt/c1/bridge/response/device/remove"
    assert zigbee.bridge_info.topic() == "zigbee2mqtt/c1/bridge/info"
    assert [call.name for call in zigbee.bridge_calls] == [
        "permit_join",
        "device/rename",
        "device/remove",
    ]


def test_a_rename_is_from_and_to_on_the_wire() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    request = DeviceRenameRequest(from_="0x00124b0001a2b3c4", to="c1-p13", transaction="t-1")
    wire = json.loads(zigbee.device_rename.request.encode(request))
    assert wire == {"from": "0x00124b0001a2b3c4", "to": "c1-p13", "transaction": "t-1"}
    assert zigbee.device_rename.request.decode(json.dumps(wire).encode()) == request


def test_permit_join_is_the_2x_form_only() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    assert json.loads(zigbee.permit_join.request.encode(PermitJoinRequest(time=120))) == {
        "time": 120
    }
    assert PermitJoinRequest.model_validate_json(b'{"time": 0, "device": "router-1"}').time == 0
    for refused in (b'{"value": true}', b'{"time": 255}', b'{"time": -1}'):
        with pytest.raises(ValidationError):
            zigbee.permit_join.request.decode(refused)


def test_remove_needs_an_id() -> None:
    assert DeviceRemoveRequest.model_validate_json(b'{"id": "c1-p03"}').force is None
    with pytest.raises(ValidationError):
        DeviceRemoveRequest.model_validate_json(b'{"force": true}')


def test_an_answer_is_matched_on_the_echoed_transaction() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    request = DeviceRenameRequest(from_="0xa", to="c1-p02", transaction=new_transaction())
    ok = zigbee.device_rename.response.decode(
        json.dumps(
            {
                "data": {"from": "0xa", "to": "c1-p02", "homeassistant_rename": False},
                "status": "ok",
                "transaction": request.transaction,
            }
        ).encode()
    )
    assert ok.ok and ok.answers(request)
    assert ok.data == DeviceRenameData(from_="0xa", to="c1-p02")
    other = zigbee.device_rename.response.decode(b'{"data":{},"status":"error","error":"x"}')
    assert not other.answers(request), "an answer without a transaction is nobody's"
    assert not other.answers(DeviceRenameRequest(from_="0xa", to="c1-p02"))
    numbered = zigbee.permit_join.response.decode(
        b'{"data":{"time":5},"status":"ok","transaction":7}'
    )
    assert numbered.answers(PermitJoinRequest(time=5, transaction=7))


def test_an_error_answer_has_no_data_and_says_why() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    error = zigbee.device_rename.response.decode(
        b'{"data":{},"status":"error","error":"Friendly name \'c1-p01\' is already in use",'
        b'"transaction":"t"}'
    )
    assert not error.ok and error.data is None
    assert error.error == "Friendly name 'c1-p01' is already in use"
    assert json.loads(zigbee.device_rename.response.encode(error)) == {
        "data": {},
        "status": "error",
        "error": "Friendly name 'c1-p01' is already in use",
        "transaction": "t",
    }


def test_the_transaction_of_a_request_not_understood_is_still_found() -> None:
    assert transaction_of(b'{"value": true, "transaction": "abc"}') == "abc"
    assert transaction_of(b'{"transaction": 12}') == 12
    for nothing in (b"nonsense", b"[1]", b'{"transaction": true}', b"{}"):
        assert transaction_of(nothing) is None


def test_interview_events_carry_the_definition_as_2x_sends_it() -> None:
    started = BridgeEvent.model_validate_json(
        b'{"type":"device_interview","data":{"friendly_name":"0x00124b0001a2b3c4",'
        b'"ieee_address":"0x00124b0001a2b3c4","status":"started"}}'
    )
    assert started.type == BridgeEventType.DEVICE_INTERVIEW
    assert started.data.status == InterviewStatus.STARTED and started.data.definition is None
    done = BridgeEvent.model_validate_json(
        b'{"type":"device_interview","data":{"friendly_name":"0x00124b0001a2b3c4",'
        b'"ieee_address":"0x00124b0001a2b3c4","status":"successful","supported":true,'
        b'"definition":{"model":"EVSE-22","vendor":"Station Sim","description":"AC pile",'
        b'"exposes":[],"supports_ota":false}}}'
    )
    assert done.data.definition is not None
    assert (done.data.definition.model, done.data.definition.vendor) == ("EVSE-22", "Station Sim")
    assert done.data.definition.model_extra == {"exposes": [], "supports_ota": False}
    with pytest.raises(ValidationError):
        BridgeEvent.model_validate_json(b'{"type":"device_dance","data":{}}')


def test_bridge_info_keeps_what_it_does_not_model() -> None:
    info = BridgeInfo.model_validate_json(
        b'{"version":"2.12.1","permit_join":true,"permit_join_end":1767225600000}'
    )
    assert info.permit_join and info.permit_join_end == 1767225600000
    assert info.model_extra == {"version": "2.12.1"}
    assert not BridgeInfo.model_validate_json(b'{"permit_join":false}').permit_join


def test_a_new_ieee_address_looks_like_zigbee2mqtts() -> None:
    address = new_ieee_address()
    assert len(address) == 18 and address.startswith("0x")
    int(address, 16)
    assert address != new_ieee_address()


def test_any_device_is_on_device_state_but_only_piles_on_pile_state() -> None:
    zigbee = ZigbeeChannels.for_charger("c1")
    stranger = "zigbee2mqtt/c1/0x00124b0001a2b3c4"
    assert zigbee.device_state.param(stranger, "device") == "0x00124b0001a2b3c4"
    assert zigbee.pile_state.parse(stranger) is None
    assert zigbee.device_set.filter() == zigbee.pile_set.filter() == "zigbee2mqtt/c1/+/set"
