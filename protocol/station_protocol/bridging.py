"""What crosses the link between a collector's own broker and the station broker.

A collector may run its own broker, which its Zigbee2MQTT and the collector service use,
bridged to the station broker (mosquitto's bridge, MQTT v5: response topics and
correlation data cross it unchanged). Only the collector's own part of the bus crosses:
what it publishes goes out, what it reads comes in, and its Zigbee2MQTT stays local except
for the bridge API the console uses for pile registration. The list is derived from the
channel declarations, so a new channel cannot be forgotten in one place and remembered in
another (the launcher and the Helm chart both render it).

The bridge announces itself on :data:`~station_protocol.channels.COLLECTOR_LINK` on both
sides (``1`` while connected; on the station side its last will writes ``0``), so that a
collector and the station services know the link is down without waiting for a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from station_protocol import channels
from station_protocol.channels import Z2M_ROOT, ZigbeeChannels


class Direction(StrEnum):
    """As mosquitto's bridge ``topic`` lines say it, seen from the collector's broker."""

    OUT = "out"
    IN = "in"
    BOTH = "both"


@dataclass(frozen=True)
class BridgedTopic:
    filter: str
    direction: Direction
    qos: int = 1

    def line(self) -> str:
        """The mosquitto bridge configuration line."""
        return f"topic {self.filter} {self.direction} {self.qos}"


def collector_link(
    charger: str, client_id: str, zigbee_root: str = Z2M_ROOT
) -> tuple[BridgedTopic, ...]:
    """Every topic filter that crosses charger ``charger``'s link, with its direction.

    ``client_id`` is the collector's MQTT client id: its replies come in on
    ``station/v1/replies/<client_id>``, and nobody else's do.
    """
    zigbee = ZigbeeChannels.for_charger(charger, zigbee_root)
    mine = {"charger": charger}
    out = [
        channels.COLLECTOR_STATUS.filter(**mine),
        channels.COLLECTOR_BREATH.filter(**mine),
        channels.PILE_METER.filter(),
        channels.VERIFICATION.filter(),
        channels.SESSION_OPEN.filter(),
        channels.CHECKOUT.filter(),
        channels.SESSION_QUERY.filter(),
        channels.WITHDRAWAL.filter(),
        channels.replies("console"),
        channels.PILE_STATUS.filter(),
        *(call.response.filter() for call in zigbee.bridge_calls),
        zigbee.bridge_event.filter(),
        zigbee.bridge_info.filter(),
        zigbee.bridge_state.filter(),
    ]
    inward = [
        channels.replies(client_id),
        channels.COLLECTOR_STOP.filter(**mine),
        channels.KIOSK.filter(**mine),
        channels.PILE_SESSION.filter(),
        channels.PILE_TARIFF.filter(),
        channels.PILE_MAINTENANCE.filter(),
        channels.SERVICE_STATUS.filter(service=channels.LOCAL_SERVER),
        channels.STATION_PILES.filter(),
        *(call.request.filter() for call in zigbee.bridge_calls),
    ]
    both = [
        # Said by the collector, and read back after a restart of either broker.
        channels.COLLECTOR_FAULT.filter(**mine),
    ]
    return (
        *(BridgedTopic(topic, Direction.OUT) for topic in out),
        *(BridgedTopic(topic, Direction.IN) for topic in inward),
        *(BridgedTopic(topic, Direction.BOTH) for topic in both),
    )
