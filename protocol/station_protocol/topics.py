"""The topic tree: every topic string of the station is built or parsed here.

Two roots share the broker. ``zigbee2mqtt/<charger>/...`` belongs to each collector's
Zigbee2MQTT (it subscribes to everything under its base topic, so we publish there only the
pile commands Zigbee2MQTT is meant to receive). ``station/v1/...`` belongs to our services.
``docs/contracts/topics.md`` has the whole tree as a table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from station_protocol.ids import CHARGER_PATTERN, is_pile_id

Z2M_ROOT = "zigbee2mqtt"
STATION_ROOT = "station/v1"


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


@dataclass(frozen=True)
class CollectorFaultTopic:
    """What a ``station/v1/collectors/<charger>/faults/<source>/<code>`` topic names."""

    charger: str
    source: str
    code: str


@dataclass(frozen=True)
class ServiceFaultTopic:
    """What a ``station/v1/services/<service>/faults/<source>/<code>`` topic names."""

    service: str
    source: str
    code: str


def levels(topic_filter: str, topic: str) -> list[str] | None:
    """The values of the ``+`` levels of ``topic_filter`` in ``topic``; ``None`` unless the
    topic has exactly the filter's levels, each ``+`` a non-empty one. The one parser every
    ``*_of_topic`` below is written with, so that they all refuse the same odd topics."""
    wanted, parts = topic_filter.split("/"), topic.split("/")
    if len(wanted) != len(parts):
        return None
    values = []
    for want, part in zip(wanted, parts, strict=True):
        if want == "+":
            if not part:
                return None
            values.append(part)
        elif want != part:
            return None
    return values


def _pile(values: list[str] | None) -> str | None:
    return values[0] if values and is_pile_id(values[0]) else None


def shared(group: str, topic_filter: str) -> str:
    """An MQTT v5 shared subscription, so that replicas split the work instead of doubling it."""
    return f"$share/{group}/{topic_filter}"


def unshare(topic_filter: str) -> str:
    """The plain filter behind a shared subscription (the filter messages are matched with)."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


class StationTopics:
    """Topics of the station's own services, under ``station/v1``."""

    @staticmethod
    def collector_status(charger: str) -> str:
        """Retained online/offline status of a collector; its MQTT last will writes offline."""
        return f"{STATION_ROOT}/collectors/{charger}/status"

    @staticmethod
    def collector_breath(charger: str) -> str:
        return f"{STATION_ROOT}/collectors/{charger}/breath"

    @staticmethod
    def collector_breaths() -> str:
        return f"{STATION_ROOT}/collectors/+/breath"

    @staticmethod
    def collector_faults(charger: str) -> str:
        """The filter for every fault report of one collector."""
        return f"{STATION_ROOT}/collectors/{charger}/faults/#"

    @staticmethod
    def all_collector_faults() -> str:
        return f"{STATION_ROOT}/collectors/+/faults/#"

    @staticmethod
    def collector_fault(charger: str, source: str, code: str) -> str:
        """Retained: one condition a collector sees on ``source`` (a pile or itself)."""
        return f"{STATION_ROOT}/collectors/{charger}/faults/{source}/{code}"

    @staticmethod
    def collector_statuses() -> str:
        return f"{STATION_ROOT}/collectors/+/status"

    @staticmethod
    def charger_of_collector_topic(topic: str) -> str | None:
        """The charger a ``station/v1/collectors/<charger>/...`` topic belongs to."""
        prefix = f"{STATION_ROOT}/collectors/"
        if not topic.startswith(prefix):
            return None
        charger = topic[len(prefix) :].split("/", 1)[0]
        return charger if re.match(CHARGER_PATTERN, charger) else None

    @staticmethod
    def collector_fault_of_topic(topic: str) -> CollectorFaultTopic | None:
        """The charger, source and code a ``collector_fault`` topic is about, if it is one."""
        found = levels(StationTopics.collector_fault("+", "+", "+"), topic)
        if found is None or not re.match(CHARGER_PATTERN, found[0]):
            return None
        return CollectorFaultTopic(*found)

    @staticmethod
    def fault_bulletin(source: str, code: str) -> str:
        """Retained: the bulletin of one active fault; an empty payload once it cleared."""
        return f"{STATION_ROOT}/faults/bulletins/{source}/{code}"

    @staticmethod
    def fault_bulletins() -> str:
        return f"{STATION_ROOT}/faults/bulletins/+/+"

    @staticmethod
    def bulletin_of_topic(topic: str) -> tuple[str, str] | None:
        """``(source, code)`` of a ``fault_bulletin`` topic, or ``None`` if it is not one."""
        found = levels(StationTopics.fault_bulletins(), topic)
        return None if found is None else (found[0], found[1])

    @staticmethod
    def service_statuses() -> str:
        return f"{STATION_ROOT}/services/+/status"

    @staticmethod
    def service_status(service: str) -> str:
        return f"{STATION_ROOT}/services/{service}/status"

    @staticmethod
    def service_fault(service: str, source: str, code: str) -> str:
        """Retained: one condition a service sees on ``source`` (central, its database...)."""
        return f"{STATION_ROOT}/services/{service}/faults/{source}/{code}"

    @staticmethod
    def service_faults(service: str) -> str:
        """The filter for every fault report of one service."""
        return f"{STATION_ROOT}/services/{service}/faults/#"

    @staticmethod
    def all_service_faults() -> str:
        return f"{STATION_ROOT}/services/+/faults/#"

    @staticmethod
    def service_fault_of_topic(topic: str) -> ServiceFaultTopic | None:
        """The service, source and code a ``service_fault`` topic is about, if it is one."""
        found = levels(StationTopics.service_fault("+", "+", "+"), topic)
        return None if found is None else ServiceFaultTopic(*found)

    @staticmethod
    def replies(client_id: str) -> str:
        """Where the answers to one bus client's requests arrive (MQTT v5 response topic)."""
        return f"{STATION_ROOT}/replies/{client_id}"

    @staticmethod
    def verification_requests() -> str:
        return f"{STATION_ROOT}/verification/requests"

    @staticmethod
    def debit_requests() -> str:
        """Billing -> verification (req/resp, shared): debit a session from its card."""
        return f"{STATION_ROOT}/verification/debits"

    @staticmethod
    def balance_requests() -> str:
        """Billing -> verification (req/resp, shared): a card's balance now."""
        return f"{STATION_ROOT}/verification/balances"

    @staticmethod
    def pile_tariff(pile: str) -> str:
        """Retained (billing): the tariff in effect on a pile now, for its display."""
        return f"{STATION_ROOT}/piles/{pile}/tariff"

    @staticmethod
    def pile_tariffs() -> str:
        return f"{STATION_ROOT}/piles/+/tariff"

    @staticmethod
    def pile_of_tariff_topic(topic: str) -> str | None:
        return _pile(levels(StationTopics.pile_tariffs(), topic))

    @staticmethod
    def session_open_requests() -> str:
        return f"{STATION_ROOT}/billing/open"

    @staticmethod
    def checkout_requests() -> str:
        return f"{STATION_ROOT}/billing/checkout"

    @staticmethod
    def collector_stop_requests(charger: str) -> str:
        """Billing (operator, balance used up) -> the collector: stop this session's charge."""
        return f"{STATION_ROOT}/collectors/{charger}/stop"

    @staticmethod
    def pile_meter(pile: str) -> str:
        """The pile's meter readings, forwarded by its collector (checked, never backwards)."""
        return f"{STATION_ROOT}/piles/{pile}/meter"

    @staticmethod
    def pile_meters() -> str:
        return f"{STATION_ROOT}/piles/+/meter"

    @staticmethod
    def pile_of_meter_topic(topic: str) -> str | None:
        return _pile(levels(StationTopics.pile_meters(), topic))

    @staticmethod
    def pile_session(pile: str) -> str:
        """Retained: the session on a pile (active, or the last one completed)."""
        return f"{STATION_ROOT}/sessions/{pile}"

    @staticmethod
    def pile_sessions() -> str:
        return f"{STATION_ROOT}/sessions/+"

    @staticmethod
    def pile_of_session_topic(topic: str) -> str | None:
        """The pile a ``pile_session`` topic is about, or ``None`` if it is not one."""
        return _pile(levels(StationTopics.pile_sessions(), topic))


SIMULATOR_ROOT = "simulator/v1"


class SimulatorTopics:
    """Topics of the pile simulator's remote control, under ``simulator/v1``.

    A root of its own: not under ``zigbee2mqtt/`` (Zigbee2MQTT would take them as its own)
    and not under ``station/`` (no station service may ever act on a simulated car).
    """

    @staticmethod
    def status() -> str:
        """Retained: whether a simulator runs, and which layout it simulates; last will offline."""
        return f"{SIMULATOR_ROOT}/status"

    @staticmethod
    def pile_control(pile: str) -> str:
        """Commands for one simulated pile: plug or unplug the car, swipe a card, faults."""
        return f"{SIMULATOR_ROOT}/piles/{pile}/control"

    @staticmethod
    def pile_controls() -> str:
        """The filter for the control topics of every pile."""
        return f"{SIMULATOR_ROOT}/piles/+/control"

    @staticmethod
    def pile_of_control_topic(topic: str) -> str | None:
        """The pile a ``pile_control`` topic is about, or ``None`` if it is not one."""
        return _pile(levels(SimulatorTopics.pile_controls(), topic))
