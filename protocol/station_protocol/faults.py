"""Fault codes: the names of everything that can go wrong at the station.

The catalogue (``catalogue.yaml`` beside this module, loaded by :mod:`.catalogue`) gives
each code its severity, texts, likely causes and remedies; bulletins, alerts, the REST API
and the fault board are generated from it. Pile error codes are derived from OCPP 1.6
``ChargePointErrorCode`` so that a pile's own report maps to a bulletin one to one.
"""

from __future__ import annotations

import re
from enum import StrEnum

from station_protocol.zigbee import ChargePointErrorCode


class FaultCode(StrEnum):
    PILE_UNREACHABLE = "pile_unreachable"
    WEAK_ZIGBEE_LINK = "weak_zigbee_link"
    ZIGBEE_BRIDGE_OFFLINE = "zigbee_bridge_offline"
    ZIGBEE_BRIDGE_UNSEEN = "zigbee_bridge_unseen"
    COLLECTOR_OFFLINE = "collector_offline"
    LOCAL_SERVER_UNREACHABLE = "local_server_unreachable"
    METER_STUCK = "meter_stuck"
    ENERGY_BACKWARDS = "energy_backwards"
    METER_IMPLAUSIBLE = "meter_implausible"
    CARD_READER_FAILURE = "card_reader_failure"
    CENTRAL_SYNC_BACKLOG = "central_sync_backlog"
    CENTRAL_TOKEN_REJECTED = "central_token_rejected"
    BROKER_UNREACHABLE = "broker_unreachable"


def pile_error_code(error: ChargePointErrorCode) -> str:
    """``GroundFailure`` -> ``pile_ground_failure``: the fault code of a pile's own error."""
    return "pile_" + re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", error.value).lower().replace("__", "_")


PILE_ERROR_CODES: dict[ChargePointErrorCode, str] = {
    error: pile_error_code(error)
    for error in ChargePointErrorCode
    if error is not ChargePointErrorCode.NO_ERROR
}
