"""Hostile input on the station's bus: property-based fuzzing of every payload a service reads.

The strategies are derived from the channel declarations (:mod:`station_protocol.channels`):
every channel of :data:`~station_protocol.channels.STATION_CHANNELS`, every Zigbee2MQTT
channel of every charger (pile state, availability, bridge state and events), and the
replies of every :class:`~station_protocol.channels.RequestChannel` (forged answers raced
against the real ones). For each channel hypothesis draws, per input:

* a topic: the channel's pattern with the station's own parameter values (its piles,
  chargers, sessions), other well-formed ones, or invalid ones (``c1-p1``, ``C1-P01``,
  unicode, empty levels);
* a payload: any JSON value; raw bytes (invalid UTF-8, truncated JSON, deep nesting,
  oversized payloads); or a message of the channel's own shape (generated from its JSON
  schema, aimed at the station's real piles, cards and sessions) with fields replaced by
  extreme values (``1E+308``, ``-1``, ``NaN``, 400-digit integers, long strings, wrong
  types, nesting), required fields dropped and unknown fields added;
* retained or not, and for a request its response topic and correlation data.

Besides the drawn inputs, :func:`known_attacks` adds, per channel, the attacks the issue
names (``{"energy": 1E+308}`` on a charging pile, a +100 kWh meter jump, a forged retained
session, forged debits, opens and checkouts), so that every run tries them.

:class:`BusFuzz` publishes everything to a running station's broker and counts the inputs
per parser (channel); :class:`BusReport` prints the counts. What the station must still be
after it (alive, no errors, exact ledgers, no session left open) is checked by
:mod:`station_tools.hostile_checks`.

Build and test code: it needs hypothesis, a dev-only package (not in the production image).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiomqtt
import httpx
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from station_protocol import channels
from station_protocol.channels import STATION_CHANNELS, Channel, RequestChannel, ZigbeeChannels
from station_protocol.faults import FaultCode
from station_protocol.ids import CHARGER_PATTERN, PILE_PATTERN, Layout
from station_protocol.zigbee import MAX_PAYLOAD_BYTES
from station_runtime.bus import BrokerAddress
from station_tools import hostile_checks as checks
from station_tools.hostile_checks import Verdict
from station_tools.rig import StationRig
from station_tools.simulator import Simulator

JsonStrategy = st.SearchStrategy[Any]

HOSTILE_CLIENT = "hostile"
"""Prefix of the fuzzer's MQTT client id and of its own reply topic."""

EXTREMES: tuple[Any, ...] = (
    1e308,
    -1e308,
    -1,
    -0.0,
    0,
    10**400,
    -(10**400),
    2**63,
    2**64,
    -(2**63) - 1,
    float("nan"),
    float("inf"),
    float("-inf"),
    "1E+308",
    "-1",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999999",
    "1e-400",
    "0.00000000000000000001",
    "12.3456789012345678901234567890",
    "",
    " ",
    "\x00",
    "\ud800",
    "💥" * 64,
    "x" * 5000,
    True,
    False,
    None,
    [],
    {},
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
    {"$gt": 0},
)
"""Values that break a careless reader: huge, negative, not-a-number, empty, long, nested."""

DEPTH = 10_000

RAW_PAYLOADS: tuple[bytes, ...] = (
    b"",
    b"\xff\xfe\xfd",
    b"\xc3\x28",
    b'{"energy": 1E+308}',
    b'{"energy": 1e309}',
    b'{"energy": -1}',
    b'{"energy": NaN}',
    b'{"energy": "1E+308"}',
    b"{",
    b"}",
    b"null",
    b"true",
    b"0",
    b"[]",
    b'""',
    b"online",
    b"offline",
    b" online ",
    b'"online"',
    b'{"state": "ONLINE"}',
    b"[" * DEPTH + b"]" * DEPTH,
    b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    b'{"v": "v1", "v": "v2"}',
    b'{"x": "' + b"a" * (MAX_PAYLOAD_BYTES + 1) + b'"}',
    b"A" * (1024 * 1024),
)
"""Bytes no JSON encoder would write: invalid UTF-8, truncated JSON, NaN, deep nesting,
duplicate keys, payloads over a pile message's 16 KiB and of 1 MiB."""

BAD_LEVELS: tuple[str, ...] = (
    "",
    "c0-p01",
    "c1-p1",
    "c1-p001",
    "C1-P01",
    "c1000-p01",
    "c1-p01 ",
    " c1-p01",
    "c1_p01",
    "c01",
    "c1-",
    "..",
    "$SYS",
    "ｃ1-p01",
    "c1-p٠١",
    "x" * 300,
)
"""Topic levels that are not what a parameter's name says (a pile, a charger)."""

_LEVEL_CHARS = st.characters(
    exclude_characters="/+#", exclude_categories=["Cc", "Cs", "Cn"], max_codepoint=0x1FFFF
)
"""Characters of a topic level a broker passes on: MQTT refuses the wildcards and ``/`` in a
level, and mosquitto closes the connection of a client whose topic holds a control
character, a surrogate or a noncharacter (malformed packet), so those never reach a service."""


@dataclass(frozen=True)
class Targets:
    """The station's own values, so that well-shaped hostile input reaches real state."""

    layout: Layout
    cards: tuple[str, ...] = ()
    """Cards the station knows (the run's witnesses)."""
    sessions: tuple[str, ...] = ()
    """Sessions the station knows, active or ended."""
    active: Mapping[str, str] = field(default_factory=dict)
    """Pile -> the session charging on it when the run starts."""
    meters: Mapping[str, Decimal] = field(default_factory=dict)
    """Pile -> its meter register when the run starts."""
    card_of: Mapping[str, str] = field(default_factory=dict)
    """Session -> its card."""
    services: tuple[str, ...] = ("verification", "billing", "faults", "sync", "central")

    @property
    def piles(self) -> tuple[str, ...]:
        return tuple(self.layout.pile_ids())

    @property
    def chargers(self) -> tuple[str, ...]:
        return tuple(self.layout.charger_ids())


@dataclass(frozen=True)
class Hostile:
    """One input: what is published, where, and how."""

    parser: str
    """The channel it is aimed at (its topic pattern, or ``<pattern> reply``)."""
    kind: str
    """``json`` (any JSON value), ``raw`` (bytes), ``shaped`` (the channel's shape, mutated)
    or ``attack`` (one of :func:`known_attacks`)."""
    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1
    response_topic: str | None = None
    correlation: bytes | None = None


@dataclass(frozen=True)
class Parser:
    """A channel some service reads, and the topic it is fuzzed on."""

    label: str
    channel: Channel[Any]
    reply_of: RequestChannel[Any, Any] | None = None
    """Set for a forged reply: the request channel whose answers it races."""


def parsers(layout: Layout) -> list[Parser]:
    """Every channel a service reads: the station's, each charger's Zigbee2MQTT, replies."""
    found = [Parser(channel.pattern, channel) for channel in STATION_CHANNELS]
    for charger in layout.charger_ids():
        zigbee = ZigbeeChannels.for_charger(charger)
        for channel in (
            zigbee.pile_state,
            zigbee.pile_availability,
            zigbee.bridge_state,
            zigbee.bridge_event,
        ):
            found.append(Parser(channel.pattern, channel))
    for channel in STATION_CHANNELS:
        if isinstance(channel, RequestChannel):
            found.append(Parser(f"{channel.pattern} reply", channel, reply_of=channel))
    return found


# -- strategies ------------------------------------------------------------------------------


def json_values() -> JsonStrategy:
    """Any JSON value, NaN and infinities included (Python's encoder writes them)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=40),
        st.sampled_from(EXTREMES),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=5),
            st.dictionaries(st.text(max_size=12), inner, max_size=5),
        ),
        max_leaves=20,
    )


def encode(value: Any) -> bytes:
    """JSON as a careless or hostile client writes it (``NaN``, ``Infinity``, any integer)."""
    return json.dumps(value, allow_nan=True).encode()


def raw_payloads() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.sampled_from(RAW_PAYLOADS),
        st.binary(max_size=200),
        st.text(max_size=80).map(lambda text: text.encode("utf-8", "surrogatepass")),
    )


def _aware_times() -> st.SearchStrategy[str]:
    return st.one_of(
        st.datetimes(
            min_value=datetime(1970, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
            max_value=datetime(9999, 12, 30),  # noqa: DTZ001
            timezones=st.just(UTC),
        ).map(lambda moment: moment.isoformat()),
        st.just(datetime.now(UTC).isoformat()),
    )


def _strings(schema: Mapping[str, Any], name: str, targets: Targets) -> st.SearchStrategy[str]:
    pattern = schema.get("pattern")
    if schema.get("format") == "date-time":
        return _aware_times()
    if pattern == PILE_PATTERN or name == "pile_id":
        return st.one_of(
            st.sampled_from(targets.piles), st.from_regex(PILE_PATTERN, fullmatch=True)
        )
    if pattern == CHARGER_PATTERN or name == "charger":
        return st.one_of(
            st.sampled_from(targets.chargers), st.from_regex(CHARGER_PATTERN, fullmatch=True)
        )
    if name == "card_uid" and targets.cards:
        return st.one_of(st.sampled_from(targets.cards), st.from_regex(r"[\x20-\x7e]{1,64}"))
    if name == "session_id":
        known = st.sampled_from(targets.sessions) if targets.sessions else st.nothing()
        return st.one_of(known, st.uuids().map(str))
    if name == "source":
        return st.sampled_from(targets.piles + targets.chargers + ("central",))
    if name == "code":
        return st.sampled_from([code.value for code in FaultCode] + ["pile_ground_failure"])
    if name == "service":
        return st.sampled_from(targets.services)
    if pattern is not None:
        return st.from_regex(pattern, fullmatch=True)
    return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 30))


def shaped(
    schema: Mapping[str, Any],
    targets: Targets,
    defs: Mapping[str, Any] | None = None,
    name: str = "",
) -> JsonStrategy:
    """Values of ``schema`` (a pydantic JSON schema), aimed at the station's own ids."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return shaped(defs[schema["$ref"].rsplit("/", 1)[-1]], targets, defs, name)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([shaped(option, targets, defs, name) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties: Mapping[str, Any] | None = schema.get("properties")
        if properties is None:
            values = shaped(schema.get("additionalProperties") or {}, targets, defs)
            return st.dictionaries(st.text(max_size=12), values, max_size=3)
        required = set(schema.get("required", ()))
        fields = {key: shaped(sub, targets, defs, key) for key, sub in properties.items()}
        return st.fixed_dictionaries(
            {key: value for key, value in fields.items() if key in required},
            optional={key: value for key, value in fields.items() if key not in required},
        )
    if kind == "string":
        return _strings(schema, name, targets)
    if kind == "number":
        low = schema.get("minimum")
        numbers = st.decimals(min_value=low, max_value=10**6, places=3, allow_nan=False)
        return st.one_of(numbers.map(str), numbers.map(float))
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**31) - 1) + 1)
        return st.integers(min_value=low, max_value=2**31)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(shaped(schema.get("items") or {}, targets, defs), max_size=4)
    if kind == "null":
        return st.none()
    return json_values()


@st.composite
def mutated(draw: st.DrawFn, base: JsonStrategy, keys: Sequence[str]) -> Any:
    """A message of the right shape with up to three fields made hostile."""
    message = draw(base)
    if not isinstance(message, dict):
        return message
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        action = draw(st.sampled_from(("replace", "replace", "drop", "unknown")))
        key = draw(st.sampled_from(tuple(keys) or ("v",)))
        if action == "replace":
            message[key] = draw(st.one_of(st.sampled_from(EXTREMES), json_values()))
        elif action == "drop":
            message.pop(key, None)
        else:
            message[draw(st.text(max_size=20))] = draw(json_values())
    return message


def payloads(schema: Mapping[str, Any], targets: Targets) -> st.SearchStrategy[tuple[str, bytes]]:
    """``(kind, payload)``: any JSON, raw bytes, or the channel's shape made hostile."""
    keys = tuple(schema.get("properties", {}))
    return st.one_of(
        json_values().map(lambda value: ("json", encode(value))),
        raw_payloads().map(lambda raw: ("raw", raw)),
        mutated(shaped(schema, targets), keys).map(lambda value: ("shaped", encode(value))),
        mutated(shaped(schema, targets), keys).map(lambda value: ("shaped", encode(value))),
    )


def _level(name: str, targets: Targets) -> st.SearchStrategy[str]:
    if name == "pile":
        good = st.one_of(
            st.sampled_from(targets.piles), st.from_regex(PILE_PATTERN, fullmatch=True)
        )
    elif name == "charger":
        good = st.one_of(
            st.sampled_from(targets.chargers), st.from_regex(CHARGER_PATTERN, fullmatch=True)
        )
    elif name == "source":
        good = st.sampled_from(targets.piles + targets.chargers)
    elif name == "code":
        good = st.sampled_from([code.value for code in FaultCode])
    elif name == "service":
        good = st.sampled_from(targets.services)
    else:
        good = st.text(_LEVEL_CHARS, min_size=1, max_size=20)
    bad = st.one_of(st.sampled_from(BAD_LEVELS), st.text(_LEVEL_CHARS, max_size=20))
    return st.one_of(good, good, good, bad)


def topics(channel: Channel[Any], targets: Targets) -> st.SearchStrategy[str]:
    """Topics of ``channel``: mostly with the station's own values, some invalid."""
    if not channel.params:
        return st.just(channel.pattern)
    levels = st.fixed_dictionaries({name: _level(name, targets) for name in channel.params})
    return levels.map(lambda values: channel.pattern.format(**values))


def inputs(parser: Parser, targets: Targets, sink: str) -> st.SearchStrategy[Hostile]:
    """Hostile inputs for one parser; a request's answers go to ``sink`` (or anywhere)."""
    channel = parser.channel
    if parser.reply_of is not None:
        schema = parser.reply_of.reply.json_schema()
        return payloads(schema, targets).map(
            lambda drawn: Hostile(parser.label, drawn[0], "", drawn[1])
        )
    schema = channel.adapter.json_schema()
    requests = isinstance(channel, RequestChannel)
    response_topics = (
        st.one_of(
            st.just(sink),
            st.just(sink),
            st.none(),
            st.sampled_from(
                [channels.PILE_SESSION.topic(pile=targets.piles[0]), channels.CHECKOUT.topic()]
            ),
            st.text(_LEVEL_CHARS, min_size=1, max_size=30).map(channels.replies),
        )
        if requests
        else st.none()
    )
    correlations = st.one_of(st.none(), st.binary(max_size=32)) if requests else st.none()
    return st.builds(
        lambda topic, drawn, retain, response, correlation: Hostile(
            parser.label,
            drawn[0],
            topic,
            drawn[1],
            retain=retain,
            qos=channel.qos,
            response_topic=response,
            correlation=correlation,
        ),
        topics(channel, targets),
        payloads(schema, targets),
        st.booleans(),
        response_topics,
        correlations,
    )


def draw(strategy: st.SearchStrategy[Hostile], budget: int, at: int) -> list[Hostile]:
    """``budget`` inputs of ``strategy`` (fewer if it has fewer), reproducible by ``at``."""
    drawn: list[Hostile] = []

    @seed(at)
    @settings(
        max_examples=budget,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Hostile) -> None:
        drawn.append(value)

    collect()
    return drawn[:budget]


# -- the attacks the issue names -------------------------------------------------------------


def known_attacks(targets: Targets, sink: str) -> list[Hostile]:
    """Forgeries a careful reader must refuse, aimed at the station's real sessions."""
    attacks: list[Hostile] = []
    now = datetime.now(UTC).isoformat()
    card = targets.cards[0] if targets.cards else "HOSTILE-CARD"
    idle = [pile for pile in targets.piles if pile not in targets.active]

    def add(channel: Channel[Any], topic: str, payload: bytes, retain: bool = False) -> None:
        response = sink if isinstance(channel, RequestChannel) else None
        correlation = uuid.uuid4().bytes if response else None
        attacks.append(
            Hostile(
                channel.pattern,
                "attack",
                topic,
                payload,
                retain,
                channel.qos,
                response,
                correlation,
            )
        )

    # Each charging pile gets one kind of forgery, so that a failed check names its cause:
    # an absurd meter reading, a +100 kWh jump, or billing's word and a checkout forged.
    for index, (pile, session) in enumerate(sorted(targets.active.items())):
        state = ZigbeeChannels.for_charger(pile.split("-")[0]).pile_state
        meter = channels.PILE_METER
        reading = {"pile_id": pile, "session_id": session}
        jump = targets.meters.get(pile, Decimal(0)) + 100
        if index % 3 == 0:
            add(state, state.topic(pile=pile), b'{"energy": 1E+308}')
            add(meter, meter.topic(pile=pile), encode({**reading, "energy": "1E+308"}))
        elif index % 3 == 1:
            add(state, state.topic(pile=pile), encode({"energy": float(jump)}))
            add(meter, meter.topic(pile=pile), encode({**reading, "energy": str(jump)}))
        else:
            completed = {
                "session_id": session,
                "pile_id": pile,
                "card_uid": targets.card_of.get(session, card),
                "status": "completed",
                "started_at": now,
                "stopped_at": now,
                "stop_reason": "local",
            }
            session_topic = channels.PILE_SESSION.topic(pile=pile)
            add(channels.PILE_SESSION, session_topic, encode(completed), True)
            checkout = {
                "session_id": session,
                "pile_id": pile,
                "meter_stop": str(jump),
                "stop_reason": "local",
            }
            add(channels.CHECKOUT, channels.CHECKOUT.topic(), encode(checkout))
    for pile in idle[:2]:
        forged = {
            "session_id": str(uuid.uuid4()),
            "pile_id": pile,
            "card_uid": card,
            "status": "active",
            "started_at": now,
        }
        add(channels.PILE_SESSION, channels.PILE_SESSION.topic(pile=pile), encode(forged), True)
        opened = {
            "session_id": str(uuid.uuid4()),
            "pile_id": pile,
            "card_uid": card,
            "meter_start": "0",
        }
        add(channels.SESSION_OPEN, channels.SESSION_OPEN.topic(), encode(opened))
    pile = targets.piles[0]
    for amount in ("5.00", "-50.00", "1E+308", "0.00001"):
        debit = {
            "session_id": str(uuid.uuid4()),
            "card_uid": card,
            "pile_id": pile,
            "amount": amount,
        }
        add(channels.DEBIT, channels.DEBIT.topic(), encode(debit))
    add(channels.BALANCE, channels.BALANCE.topic(), encode({"card_uid": card}))
    return attacks


def forged_replies(targets: Targets) -> dict[str, list[Mapping[str, Any]]]:
    """Well-formed answers a racing forger sends first (echoing the request's ids)."""
    return {
        channels.VERIFICATION.pattern: [{"result": "accepted", "balance": "1000000"}],
        channels.SESSION_OPEN.pattern: [{"opened": True}],
        channels.CHECKOUT.pattern: [{"ok": True}],
        channels.DEBIT.pattern: [{"result": "booked", "amount": "0", "balance": "1000000"}],
        channels.BALANCE.pattern: [{"known": True, "balance": "1000000"}],
        channels.COLLECTOR_BREATH.pattern: [{}],
    }


# -- the run ---------------------------------------------------------------------------------


@dataclass
class BusReport:
    """What was published, per parser and kind of input."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)
    retained: Counter[str] = field(default_factory=Counter)
    answered: int = 0
    """Answers the station sent to the fuzzer's own reply topic."""
    raced: Counter[str] = field(default_factory=Counter)
    """Requests seen on the bus that a forged reply was raced against, per channel."""
    seed: int = 0
    seconds: float = 0.0

    def count(self, hostile: Hostile) -> None:
        self.counts.setdefault(hostile.parser, Counter())[hostile.kind] += 1
        if hostile.retain:
            self.retained[hostile.parser] += 1

    @property
    def total(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.counts.values())

    def table(self) -> str:
        kinds = ("json", "raw", "shaped", "attack")
        header = f"{'parser (channel)':58} " + " ".join(f"{k:>7}" for k in kinds)
        lines = [header + f" {'retain':>7} {'total':>7}"]
        for parser in sorted(self.counts):
            row = self.counts[parser]
            cells = " ".join(f"{row[k]:>7}" for k in kinds)
            total = sum(row.values())
            lines.append(f"{parser:58} {cells} {self.retained[parser]:>7} {total:>7}")
        lines.append(
            f"{self.total} inputs on {len(self.counts)} parsers in {self.seconds:.1f} s "
            f"(seed {self.seed}); {self.answered} answers to the fuzzer's requests; "
            f"forged replies raced against {sum(self.raced.values())} real requests"
        )
        return "\n".join(lines)


async def retained(broker: BrokerAddress, topic_filter: str, wait: float = 1.0) -> dict[str, bytes]:
    """The retained messages under ``topic_filter`` now (those the broker sends in ``wait``)."""
    found: dict[str, bytes] = {}
    async with aiomqtt.Client(
        broker.host,
        broker.port,
        identifier=f"{HOSTILE_CLIENT}-snapshot-{uuid.uuid4().hex[:8]}",
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=10,
    ) as client:
        await client.subscribe(topic_filter, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                if message.retain and isinstance(message.payload, bytes):
                    found[message.topic.value] = message.payload

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collect(), wait)
    return found


def _properties(hostile: Hostile) -> Properties | None:
    if hostile.response_topic is None and hostile.correlation is None:
        return None
    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    if hostile.response_topic is not None:
        properties.ResponseTopic = hostile.response_topic
    if hostile.correlation:
        properties.CorrelationData = hostile.correlation
    return properties


@dataclass
class BusFuzz:
    """Publishes hostile input to a running station's broker, and counts it.

    ``budget`` inputs are drawn per parser; every one of :func:`known_attacks` is added.
    Forged replies are raced against up to ``budget`` real requests per request channel
    while the run lasts. At its end the attacker goes away: every retained topic it wrote
    under ``station/v1`` is deleted (each owner republishes its word in its own time), and
    each Zigbee2MQTT one gets back what Zigbee2MQTT had retained there (it writes those once,
    when it connects). What the input left in the services' memory is what the checks see.
    """

    broker_url: str
    targets: Targets
    budget: int = 12
    seed: int = 0
    pace: float = 0.002
    """Seconds between two publishes: a flood, but one the broker keeps up with."""
    attacks: bool = True
    parsers: list[Parser] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.parsers:
            self.parsers = parsers(self.targets.layout)
        self.sink = channels.replies(f"{HOSTILE_CLIENT}-{uuid.uuid4().hex[:8]}")

    def plan(self) -> list[Hostile]:
        """Every input of the run, in the (shuffled, reproducible) order it is sent."""
        planned: list[Hostile] = []
        for index, parser in enumerate(self.parsers):
            if parser.reply_of is None:
                planned += draw(
                    inputs(parser, self.targets, self.sink), self.budget, self.seed + index
                )
        order = random.Random(self.seed)
        order.shuffle(planned)
        if self.attacks:
            planned = known_attacks(self.targets, self.sink) + planned
        return planned

    def reply_pool(self) -> dict[str, list[Hostile]]:
        """Per request channel: the forged answers to race, drawn like any other input."""
        pools: dict[str, list[Hostile]] = {}
        for index, parser in enumerate(self.parsers):
            if parser.reply_of is not None:
                drawn = draw(
                    inputs(parser, self.targets, self.sink), self.budget, self.seed + 1000 + index
                )
                forged = [
                    Hostile(parser.label, "attack", "", encode(body))
                    for body in forged_replies(self.targets).get(parser.reply_of.pattern, [])
                ]
                pools[parser.reply_of.pattern] = forged + drawn
        return pools

    async def run(self) -> BusReport:
        report = BusReport(seed=self.seed)
        planned = self.plan()
        pools = self.reply_pool()
        loop = asyncio.get_running_loop()
        started = loop.time()
        written: set[str] = set()
        broker = BrokerAddress.parse(self.broker_url)
        found = await retained(broker, f"{channels.Z2M_ROOT}/#")
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            identifier=self.sink.rsplit("/", 1)[-1],
            protocol=aiomqtt.ProtocolVersion.V5,
            timeout=10,
        ) as client:
            await client.subscribe(self.sink, qos=1)
            requests = {
                channel.filter(): channel
                for channel in STATION_CHANNELS
                if isinstance(channel, RequestChannel)
            }
            for topic_filter in requests:
                await client.subscribe(topic_filter, qos=1)
            listener = asyncio.create_task(self._listen(client, requests, pools, report))
            try:
                for hostile in planned:
                    await self._publish(client, hostile)
                    report.count(hostile)
                    if hostile.retain:
                        written.add(hostile.topic)
                    await asyncio.sleep(self.pace)
                await asyncio.sleep(1.0)  # the last answers and races
            finally:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            for topic in sorted(written):
                await client.publish(topic, found.get(topic, b""), qos=1, retain=True)
        report.seconds = loop.time() - started
        return report

    async def _publish(self, client: aiomqtt.Client, hostile: Hostile) -> None:
        await client.publish(
            hostile.topic,
            hostile.payload,
            qos=hostile.qos,
            retain=hostile.retain,
            properties=_properties(hostile),
        )

    async def _listen(
        self,
        client: aiomqtt.Client,
        requests: Mapping[str, RequestChannel[Any, Any]],
        pools: Mapping[str, list[Hostile]],
        report: BusReport,
    ) -> None:
        """Count the answers to our requests; race a forged answer against real requests."""
        async for message in client.messages:
            topic = message.topic.value
            if topic == self.sink:
                report.answered += 1
                continue
            properties = message.properties
            response = getattr(properties, "ResponseTopic", None) if properties else None
            if response is None or response == self.sink:
                continue
            channel = next((c for f, c in requests.items() if message.topic.matches(f)), None)
            if channel is None:
                continue
            pool = pools.get(channel.pattern, [])
            used = report.raced[channel.pattern]
            if used >= len(pool):
                continue
            forged = _echo(pool[used], message.payload)
            report.raced[channel.pattern] += 1
            report.count(forged)
            reply = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            correlation = getattr(properties, "CorrelationData", None)
            if correlation:
                reply.CorrelationData = correlation
            await client.publish(response, forged.payload, qos=1, properties=reply)


_ECHOED = ("session_id", "card_uid", "charger", "seq", "pile_id")


def _echo(forged: Hostile, request: Any) -> Hostile:
    """A forged answer carrying the request's own ids, so that a careless asker takes it."""
    try:
        body = json.loads(forged.payload)
        asked = json.loads(request) if isinstance(request, bytes | str) else None
    except (ValueError, UnicodeDecodeError):
        return forged
    if not isinstance(body, dict) or not isinstance(asked, dict):
        return forged
    for key in _ECHOED:
        if key in asked and (forged.kind == "attack" or key in body):
            body[key] = asked[key]
    return Hostile(forged.parser, forged.kind, forged.topic, encode(body))


# -- a whole run: witnesses, the input, the checks -------------------------------------------


@dataclass
class BusRun:
    """What was sent, what the services refused, and the checks after it."""

    report: BusReport
    verdicts: list[Verdict]
    dropped: dict[str, float]

    def text(self) -> str:
        refused = ", ".join(f"{name} {count:.0f}" for name, count in sorted(self.dropped.items()))
        return "\n".join(
            [
                "hostile bus input, per parser:",
                self.report.table(),
                f"messages the services dropped as unusable: {refused}",
                "checks:",
                checks.report(self.verdicts),
            ]
        )


async def hostile_bus(
    rig: StationRig,
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    *,
    budget: int = 12,
    seed: int = 0,
    charging: int = 3,
) -> BusRun:
    """Hostile input on a running station while ``charging`` witnesses charge; then checks.

    The witnesses end their charges as drivers do once the input is over; then every check
    of :mod:`station_tools.hostile_checks` runs (none is skipped when another fails).
    """
    cards = checks.Cards()
    offsets = checks.log_offsets(rig)
    where = rig.layout.pile_ids()[:charging]
    witnesses = await checks.start_witnesses(piles, verification, billing, cards, where)
    targets = Targets(
        rig.layout,
        cards=tuple(cards.credits),
        sessions=tuple(w.session for w in witnesses if w.session),
        active={w.pile: w.session for w in witnesses if w.session},
        meters={w.pile: piles.pile(w.pile).energy for w in witnesses},
        card_of={w.session: w.card for w in witnesses if w.session},
    )
    report = await BusFuzz(rig.broker_url, targets, budget=budget, seed=seed).run()
    await checks.end_witnesses(piles, billing, witnesses)
    verdicts = [
        await checks.alive(rig),
        await checks.no_session_open(billing, rig),
        checks.billing_exact(billing, witnesses),
        await checks.piles_charge(piles, verification, billing, cards),
        await checks.ledgers(verification, billing, cards),
    ]
    verdicts.insert(1, checks.no_errors(rig, offsets))
    return BusRun(report, verdicts, checks.dropped(rig))
