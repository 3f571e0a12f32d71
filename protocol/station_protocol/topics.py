"""The topic tree: every topic string of the station is built or parsed here.

Two roots share the broker. ``zigbee2mqtt/<charger>/...`` belongs to each collector's
Zigbee2MQTT (it subscribes to everything under its base topic, so we publish there only the
pile commands Zigbee2MQTT is meant to receive). ``station/v1/...`` belongs to our services.
``docs/contracts/topics.md`` has the whole tree as a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from station_protocol.channels import Z2M_ROOT


class ZigbeeTopicKind(StrEnum):
    BRIDGE_STATE = "bridge_state"
    BRIDGE_EVENT = "bridge_event"
    BRIDGE_RESPONSE = "bridge_response"
    BRIDGE_OTHER = "bridge_other"
    PILE_STATE = "pile_state"
    PILE_AVAILABILITY = "pile_availability"
    PILE_COMMAND = "pile_command"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ZigbeeTopic:
    """A parsed topic under a collector's Zigbee2MQTT base topic."""

    kind: ZigbeeTopicKind
    device: str | None = None
    """The friendly name the topic is about (a pile id for our piles), if any."""
    request: str | None = None
    """For ``bridge/response/<request>``: the request name."""


@dataclass(frozen=True)
class ZigbeeTopics:
    """The Zigbee2MQTT topics of one collector (``<base>`` = ``zigbee2mqtt/<charger>``)."""

    base: str

    @classmethod
    def for_charger(cls, charger: str, root: str = Z2M_ROOT) -> ZigbeeTopics:
        return cls(f"{root}/{charger}")

    @property
    def everything(self) -> str:
        return f"{self.base}/#"

    @property
    def bridge_state(self) -> str:
        return f"{self.base}/bridge/state"

    @property
    def bridge_event(self) -> str:
        return f"{self.base}/bridge/event"

    def bridge_request(self, name: str) -> str:
        return f"{self.base}/bridge/request/{name}"

    def bridge_response(self, name: str) -> str:
        return f"{self.base}/bridge/response/{name}"

    def pile(self, pile: str) -> str:
        return f"{self.base}/{pile}"

    def pile_set(self, pile: str) -> str:
        return f"{self.base}/{pile}/set"

    def pile_availability(self, pile: str) -> str:
        return f"{self.base}/{pile}/availability"

    def parse(self, topic: str) -> ZigbeeTopic:
        """Classify ``topic``; anything unexpected is ``UNKNOWN``, never an exception."""
        prefix = f"{self.base}/"
        if not topic.startswith(prefix):
            return ZigbeeTopic(ZigbeeTopicKind.UNKNOWN)
        parts = topic[len(prefix) :].split("/")
        if parts[0] == "bridge":
            return _parse_bridge(parts[1:])
        device = parts[0]
        if len(parts) == 1:
            return ZigbeeTopic(ZigbeeTopicKind.PILE_STATE, device)
        if parts[1:] == ["availability"]:
            return ZigbeeTopic(ZigbeeTopicKind.PILE_AVAILABILITY, device)
        if parts[1] in ("set", "get"):
            return ZigbeeTopic(ZigbeeTopicKind.PILE_COMMAND, device)
        return ZigbeeTopic(ZigbeeTopicKind.UNKNOWN, device)


def _parse_bridge(parts: list[str]) -> ZigbeeTopic:
    if parts == ["state"]:
        return ZigbeeTopic(ZigbeeTopicKind.BRIDGE_STATE)
    if parts == ["event"]:
        return ZigbeeTopic(ZigbeeTopicKind.BRIDGE_EVENT)
    if len(parts) >= 2 and parts[0] == "response":
        return ZigbeeTopic(ZigbeeTopicKind.BRIDGE_RESPONSE, request="/".join(parts[1:]))
    return ZigbeeTopic(ZigbeeTopicKind.BRIDGE_OTHER)
