"""Chaos (issue 6): 500 sessions on 48 piles while every part of the station fails in turn.

Drivers keep plugging, swiping, charging and leaving on every pile while each service is
killed with -9 and restarted, the broker restarts, central is away for two minutes and the
network to central is cut. After each blow the books must agree (invariant 2 of
``docs/invariants.md``): every session billing completed is at central exactly once with
billing's totals, and every card's ledger sums to its balance with one debit per completed
session. At the end no
session is left open and every session that started is a record at central.

A session a blow kept from starting (verification or billing away, a pile not heard since
the broker came back) is counted as not started; the test goes on until 500 did start.

Its own module, hence its own station and broker: it kills everything.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from station_protocol.ids import Layout
from station_tools.central import prometheus_sample
from station_tools.link import Link
from station_tools.mosquitto import Mosquitto
from station_tools.rig import Ports, StationRig
from station_tools.simulator import Simulator, SimulatorOptions
from station_tools.steps import REPEAT_WINDOW

pytestmark = pytest.mark.slow
"""End to end on real processes: run with the whole suite, skipped by ``-m 'not slow'``."""

LAYOUT = Layout(4, 12)
RATED_POWER = Decimal(1400)
"""kW: the simulated 7 kW piles run 100 times sped up, so their meters count 700 kW."""
SESSIONS = 500
"""Sessions that must start (refused or unanswered starts do not count)."""
CARDS = 300
"""Drivers' cards, used in turn: a card comes back long after its last session ended."""
RATE = 1.6
"""New sessions per second while the blows fall; the rest come quicker at the end."""
HURRIED = 0.2
"""Seconds between new sessions once the blows are over (a few at once on a 2-core machine)."""
CENTRAL_OUTAGE = 120.0
"""Seconds central is stopped (the issue's two minutes)."""
DOWN = 2.0
"""Seconds a killed service stays dead before it is started again."""
AFTER = 3.0
"""Seconds of traffic on the recovered station before its books are checked."""
START_WAIT = 12.0
"""How long a driver waits for energy after plug and swipe before giving up and leaving."""
STOP_WAIT = 8.0
KILLED = ("verification", "billing", "faults", "sync", "central", "collector-c3")
"""Killed with -9 and restarted, in this order (one collector of the four)."""
SETTLE = 60.0
"""Seconds the books get to agree after a blow (T2, sync's backoff, debit retries)."""


@pytest.fixture(scope="module")
def chaos_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    with Mosquitto(data_dir=tmp_path_factory.mktemp("chaos-broker")) as broker:
        yield broker


@pytest.fixture(scope="module")
def chaos_ports() -> Ports:
    return Ports.free(LAYOUT.chargers)


@pytest.fixture(scope="module")
async def central_link(chaos_ports: Ports) -> AsyncIterator[Link]:
    """The station's only way to central; the test cuts it."""
    async with Link(chaos_ports.central) as link:
        yield link


def chaos_env(link: Link) -> dict[str, dict[str, str]]:
    """Short timers, so that failures are noticed and recovered from within seconds."""
    return {
        "collector": {"request_timeout": "3", "stop_settle": "1", "pairing_window": "4"},
        "billing": {"debit_retry_interval": "1", "debit_timeout": "2"},
        "sync": {
            "central_url": link.url,
            "retry_min": "0.2",
            "retry_max": "2",
            "request_timeout": "2",
            "backlog_fault_after": "5",
            "poll_interval": "0.5",
        },
    }


@pytest.fixture(scope="module")
async def chaos_station(
    chaos_broker: Mosquitto,
    chaos_ports: Ports,
    central_link: Link,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[StationRig]:
    rig = StationRig(
        broker_url=chaos_broker.url,
        layout=LAYOUT,
        data_dir=Path(tmp_path_factory.mktemp("chaos-station")),
        ports=chaos_ports,
        t2=1.0,
        rated_power=RATED_POWER,
        env=chaos_env(central_link),
    )
    try:
        # In a thread: the link to central lives in this event loop and must keep relaying.
        yield await asyncio.to_thread(rig.start)
    finally:
        await asyncio.to_thread(rig.stop)


@pytest.fixture(scope="module")
async def chaos_piles(
    chaos_station: StationRig, chaos_broker: Mosquitto
) -> AsyncIterator[Simulator]:
    options = SimulatorOptions(meter_interval=1.0, speedup=Decimal(100))
    async with Simulator(chaos_broker.url, LAYOUT, options) as simulator:
        yield simulator


@dataclass
class Books:
    """What billing, central, verification and sync say, read as an operator reads them."""

    rig: StationRig
    billing: httpx.AsyncClient
    verification: httpx.AsyncClient
    central: httpx.AsyncClient
    sync: httpx.AsyncClient

    async def sessions(self, status: str) -> dict[str, dict[str, Any]]:
        response = await self.billing.get(
            "/api/v1/sessions", params={"status": status, "limit": 1000}
        )
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        assert len(body) < 1000, "more sessions than one page: the check would miss some"
        return {session["id"]: session for session in body}

    async def records(self) -> list[dict[str, Any]]:
        response = await self.central.get(
            "/api/v1/records", params={"station_id": self.rig.station_id, "limit": 10000}
        )
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body

    async def debits(self) -> dict[str, dict[str, Any]]:
        response = await self.billing.get("/api/v1/debits")
        assert response.status_code == 200, response.text
        return {debit["session_id"]: debit for debit in response.json()}

    async def ledger(self, card: str) -> dict[str, Any]:
        response = await self.verification.get(f"/api/v1/cards/{card}/ledger")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def ledgers(self, cards: set[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        ordered = sorted(cards)
        for start in range(0, len(ordered), 20):
            chunk = ordered[start : start + 20]
            found.extend(await asyncio.gather(*(self.ledger(card) for card in chunk)))
        return found

    async def sync_metric(self, name: str) -> float:
        return prometheus_sample((await self.sync.get("/metrics")).text, name)


@dataclass(frozen=True)
class Started:
    session_id: str
    pile_id: str
    card_uid: str
    phase: str


@dataclass
class Traffic:
    """Drivers on every pile, one session after another, paced so that every blow meets some.

    A pacer hands out tickets at ``RATE`` a second; a driver with a ticket plugs and swipes
    a card (in either order), charges for a few seconds, ends by a second swipe or just by
    pulling the gun, and always pulls the gun before the next car. Tickets stop once
    ``target`` sessions have started.
    """

    piles: Simulator
    cards: deque[str]
    target: int
    phase: str = "warm-up"
    started: dict[str, Started] = field(default_factory=dict)
    not_started: Counter[str] = field(default_factory=Counter)
    lost_stop_swipes: int = 0
    """Second swipes that did not stop the charge in time (the car left by unplugging)."""
    _tickets: asyncio.Queue[bool] = field(default_factory=asyncio.Queue)
    _in_flight: int = 0
    _interval: float = 1 / RATE
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._pace(), name="pacer"))
        for index, pile in enumerate(self.piles.piles):
            rng = random.Random(index)
            self._tasks.append(
                asyncio.create_task(self._drive(pile.pile_id, rng), name=pile.pile_id)
            )

    def hurry(self) -> None:
        """The blows are over: let the remaining sessions come as fast as the piles allow."""
        self._interval = HURRIED

    async def finish(self, timeout: float) -> None:
        """Until ``target`` sessions started and every driver has left its pile."""
        done, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in done:
            task.result()
        assert not pending, (
            f"traffic not finished within {timeout} s: {len(self.started)} of "
            f"{self.target} sessions started, {self._in_flight} under way"
        )

    async def abort(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pace(self) -> None:
        while len(self.started) < self.target:
            if len(self.started) + self._in_flight + self._tickets.qsize() < self.target:
                self._tickets.put_nowait(True)
            await asyncio.sleep(self._interval)
        for _ in self.piles.piles:
            self._tickets.put_nowait(False)

    async def _drive(self, pile_id: str, rng: random.Random) -> None:
        while await self._tickets.get():
            self._in_flight += 1
            card = self.cards.popleft()
            try:
                await self._session(pile_id, card, rng)
            finally:
                self.cards.append(card)
                self._in_flight -= 1
            await asyncio.sleep(rng.uniform(0.2, 1.0))

    async def _session(self, pile_id: str, card: str, rng: random.Random) -> None:
        pile = self.piles.pile(pile_id)
        phase = self.phase
        if rng.random() < 0.2:  # some drivers swipe before they plug
            await self.piles.swipe(pile_id, card)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            await self.piles.plug(pile_id)
        else:
            await self.piles.plug(pile_id)
            await asyncio.sleep(rng.uniform(0.0, 0.5))
            await self.piles.swipe(pile_id, card)
        try:
            await self.piles.wait_for(lambda: pile.charging, timeout=START_WAIT)
        except TimeoutError:
            self.not_started[phase] += 1
            await self.piles.unplug(pile_id)
            return
        assert pile.session_id is not None
        self.started[pile.session_id] = Started(pile.session_id, pile_id, card, phase)
        await asyncio.sleep(max(rng.uniform(1.0, 4.0), REPEAT_WINDOW))
        if rng.random() < 0.75:
            await self.piles.swipe(pile_id, card)
            try:
                await self.piles.wait_for(lambda: not pile.charging, timeout=STOP_WAIT)
            except TimeoutError:
                self.lost_stop_swipes += 1
        await self.piles.unplug(pile_id)


@dataclass(frozen=True)
class Tally:
    phase: str
    seconds: float
    started: int
    not_started: int
    completed: int
    records: int
    duplicates: int
    debits: int

    def __str__(self) -> str:
        return (
            f"{self.phase:<22} t={self.seconds:6.1f}s  started={self.started:<4} "
            f"not_started={self.not_started:<3} completed={self.completed:<4} "
            f"records_at_central={self.records:<4} duplicates={self.duplicates} "
            f"debits={self.debits}"
        )


async def within(seconds: float, check: Callable[[], Awaitable[str | None]]) -> None:
    """Poll ``check`` (it returns what is still wrong, or None) until it holds."""
    deadline = time.monotonic() + seconds
    while (problem := await check()) is not None:
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled within {seconds} s: {problem}")
        await asyncio.sleep(0.5)


async def books_agree(books: Books, traffic: Traffic, phase: str, began: float) -> Tally:
    """Invariant 2 as of now: the completed sessions are at central once, and debited once."""
    snapshot = await books.sessions("completed")
    seen: dict[str, list[dict[str, Any]]] = {}

    async def at_central() -> str | None:
        records = await books.records()
        seen["records"] = records
        missing = snapshot.keys() - {record["session_id"] for record in records}
        if missing:
            backlog = await books.sync_metric("station_sync_backlog_records")
            return f"{len(missing)} completed sessions not at central (sync backlog {backlog:.0f})"
        return None

    await within(SETTLE, at_central)
    records = seen["records"]
    per_session = Counter(record["session_id"] for record in records)
    duplicates = {session: n for session, n in per_session.items() if n > 1}
    assert not duplicates, f"{phase}: sessions at central more than once: {duplicates}"
    completed = await books.sessions("completed")
    unknown = per_session.keys() - completed.keys()
    assert not unknown, f"{phase}: records at central of no completed session: {unknown}"
    for record in records:
        same_totals(record, completed[record["session_id"]])
    debits = await debits_settled(books, snapshot.keys(), phase)
    await ledgers_sum(books, snapshot, phase)
    return Tally(
        phase=phase,
        seconds=time.monotonic() - began,
        started=len(traffic.started),
        not_started=sum(traffic.not_started.values()),
        completed=len(completed),
        records=len(records),
        duplicates=len(duplicates),
        debits=debits,
    )


def same_totals(record: dict[str, Any], session: dict[str, Any]) -> None:
    """Central's record says what billing's does: the same pile, card, meter and money."""
    where = f"record {record['session_id']}"
    assert record["pile_id"] == session["pile_id"], where
    assert record["card_uid"] == session["card_uid"], where
    for name in ("total_energy", "meter_start", "meter_stop"):
        assert Decimal(record[name]) == Decimal(session[name]), f"{where}: {name}"
    for part in ("excl_vat", "incl_vat"):
        assert Decimal(record["total_cost"][part]) == Decimal(session["total_cost"][part]), (
            f"{where}: total_cost.{part}"
        )


async def debits_settled(books: Books, sessions: Iterable[str], phase: str) -> int:
    """Every completed session's debit is booked at verification; none refused."""
    wanted = set(sessions)
    found: dict[str, dict[str, Any]] = {}

    async def settled() -> str | None:
        found.update(await books.debits())
        missing = wanted - found.keys()
        assert not missing, f"{phase}: completed sessions without a debit: {sorted(missing)[:5]}"
        refused = {s: found[s]["last_error"] for s in wanted if found[s]["status"] == "refused"}
        assert not refused, f"{phase}: debits refused: {refused}"
        pending = [s for s in wanted if found[s]["status"] != "settled"]
        return f"{len(pending)} debits pending" if pending else None

    await within(SETTLE, settled)
    return sum(1 for debit in found.values() if debit["status"] == "settled")


async def ledgers_sum(books: Books, sessions: dict[str, dict[str, Any]], phase: str) -> None:
    """Each card's entries sum to its balance; each completed session is debited once, exactly."""
    by_card: dict[str, list[dict[str, Any]]] = {}
    for session in sessions.values():
        by_card.setdefault(session["card_uid"], []).append(session)
    ledgers = await books.ledgers(set(by_card))
    completed = await books.sessions("completed")
    for ledger in ledgers:
        card, entries = ledger["card_uid"], ledger["entries"]
        total = sum((Decimal(entry["amount"]) for entry in entries), Decimal(0))
        assert total == Decimal(ledger["balance"]), f"{phase}: ledger of {card} does not sum"
        debits = Counter(e["session_id"] for e in entries if e["kind"] == "session_debit")
        twice = {session: n for session, n in debits.items() if n > 1}
        assert not twice, f"{phase}: {card} debited more than once for {twice}"
        strays = debits.keys() - completed.keys()
        assert not strays, f"{phase}: {card} debited for sessions not completed: {strays}"
        amounts = {
            e["session_id"]: Decimal(e["amount"]) for e in entries if e["kind"] == "session_debit"
        }
        for session in by_card[card]:
            cost = Decimal(session["total_cost"]["incl_vat"])
            assert amounts.get(session["id"]) == -cost, (
                f"{phase}: session {session['id']} debited {amounts.get(session['id'])}, "
                f"billed {cost}"
            )


def killing(rig: StationRig, name: str) -> Callable[[], Awaitable[None]]:
    """kill -9, a moment dead, then start again and wait until it is ready (in threads)."""

    async def blow() -> None:
        service = rig[name]
        await asyncio.to_thread(service.kill)
        await asyncio.sleep(DOWN)
        await asyncio.to_thread(service.start, 60)

    return blow


async def central_away(rig: StationRig, books: Books) -> None:
    """Central stopped for two minutes: records wait in the outbox, then all go."""
    failures = await books.sync_metric("station_sync_send_failures_total")
    await asyncio.to_thread(rig["central"].stop)
    await asyncio.sleep(CENTRAL_OUTAGE)
    assert await books.sync_metric("station_sync_send_failures_total") > failures
    assert await books.sync_metric("station_sync_backlog_records") > 0, "nothing waited"
    await asyncio.to_thread(rig["central"].start, 60)


async def network_cut(link: Link, books: Books) -> None:
    """First central's answers are lost (it stores, the station never hears), then all."""
    failures = await books.sync_metric("station_sync_send_failures_total")
    link.lose_replies()
    await asyncio.sleep(8)
    link.cut()
    await asyncio.sleep(15)
    assert await books.sync_metric("station_sync_send_failures_total") > failures
    link.restore()


async def no_session_left(books: Books, traffic: Traffic) -> int:
    """Wait for open sessions to end; any still open is ended by its driver. How many were."""

    async def none_active() -> str | None:
        active = await books.sessions("active")
        return f"{len(active)} sessions still active: {list(active)[:5]}" if active else None

    try:
        await within(20, none_active)
        return 0
    except AssertionError:
        pass
    active = await books.sessions("active")
    for session in active.values():
        pile = session["pile_id"]
        await traffic.piles.plug(pile)
        await traffic.piles.swipe(pile, session["card_uid"])
        await asyncio.sleep(REPEAT_WINDOW)
        await traffic.piles.unplug(pile)
    await within(30, none_active)
    return len(active)


@pytest.mark.timeout(600)
async def test_every_started_session_ends_in_one_record_whatever_fails(
    chaos_station: StationRig,
    chaos_broker: Mosquitto,
    chaos_piles: Simulator,
    central_link: Link,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rig = chaos_station
    admin = {"Authorization": f"Bearer {rig.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=rig.url("billing"), timeout=10) as billing,
        httpx.AsyncClient(base_url=rig.url("verification"), timeout=10) as verification,
        httpx.AsyncClient(base_url=rig.url("central"), headers=admin, timeout=10) as central,
        httpx.AsyncClient(base_url=rig.url("sync"), timeout=10) as sync,
    ):
        books = Books(rig, billing, verification, central, sync)
        cards = deque(await issue_cards(verification, CARDS))
        traffic = Traffic(chaos_piles, cards, SESSIONS)
        began = time.monotonic()
        tallies: list[Tally] = []

        def report(tally: Tally) -> None:
            tallies.append(tally)
            show(capsys, str(tally))

        blows: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("warm-up", lambda: asyncio.sleep(5)),
            *((f"kill -9 {name}", killing(rig, name)) for name in KILLED),
            ("broker restart", lambda: asyncio.to_thread(chaos_broker.restart)),
            (f"central away {CENTRAL_OUTAGE:.0f}s", lambda: central_away(rig, books)),
            ("network cut", lambda: network_cut(central_link, books)),
        ]
        traffic.start()
        try:
            for phase, blow in blows:
                traffic.phase = phase
                await blow()
                await asyncio.sleep(AFTER)
                report(await books_agree(books, traffic, phase, began))
            traffic.phase = "final"
            traffic.hurry()
            await traffic.finish(timeout=120)
        finally:
            await traffic.abort()
        rescued = await no_session_left(books, traffic)
        final = await books_agree(books, traffic, "final", began)
        report(final)
        summary = await final_summary(books, traffic, final, rescued)
        show(capsys, summary)
        await everything_started_is_recorded(books, traffic, summary)


def show(capsys: pytest.CaptureFixture[str], line: str) -> None:
    """The counts belong in the CI log, which runs without ``-s``: past the capture, on purpose."""
    with capsys.disabled():
        print(f"\n[chaos] {line}", flush=True)  # noqa: T201


async def final_summary(books: Books, traffic: Traffic, final: Tally, rescued: int) -> str:
    debits = await books.debits()
    withdrawn = [r for r in await books.records() if r["stop_reason"] == "start_failed"]
    return (
        f"sessions started={len(traffic.started)} not_started={sum(traffic.not_started.values())} "
        f"(by phase: {dict(traffic.not_started)}) completed={final.completed} "
        f"(withdrawn unanswered starts={len(withdrawn)}) "
        f"records_at_central={final.records} duplicates={final.duplicates} "
        f"debits={sum(1 for d in debits.values() if d['status'] == 'settled')} "
        f"lost_stop_swipes={traffic.lost_stop_swipes} ended_by_rescue={rescued} "
        f"sync_backlog={await books.sync_metric('station_sync_backlog_records'):.0f} "
        f"run={final.seconds:.0f}s"
    )


async def everything_started_is_recorded(books: Books, traffic: Traffic, summary: str) -> None:
    """The end: nothing open, nothing waiting, and every charge a driver saw is at central."""
    assert len(traffic.started) >= SESSIONS, summary
    assert not await books.sessions("active"), summary
    completed = await books.sessions("completed")
    records = {record["session_id"]: record for record in await books.records()}
    assert records.keys() == completed.keys(), summary
    unrecorded = [traffic.started[s] for s in traffic.started.keys() - records.keys()]
    assert not unrecorded, f"charged but never recorded: {unrecorded[:5]}; {summary}"
    for session_id, started in traffic.started.items():
        assert records[session_id]["card_uid"] == started.card_uid, summary
        assert records[session_id]["pile_id"] == started.pile_id, summary
    debits = await books.debits()
    assert {s for s, d in debits.items() if d["status"] == "settled"} == completed.keys(), summary

    async def drained() -> str | None:
        backlog = await books.sync_metric("station_sync_backlog_records")
        return f"sync backlog {backlog:.0f}; {summary}" if backlog else None

    await within(10, drained)


async def issue_cards(verification: httpx.AsyncClient, count: int) -> list[str]:
    async def issue() -> str:
        uid = f"CHAOS-{uuid.uuid4().hex[:10]}"
        response = await verification.post(
            "/api/v1/cards", json={"uid": uid, "holder": "Chaos driver", "balance": "1000.00"}
        )
        assert response.status_code == 201, response.text
        return uid

    cards: list[str] = []
    for start in range(0, count, 20):
        cards.extend(await asyncio.gather(*(issue() for _ in range(min(20, count - start)))))
    return cards
