"""What a station must still be after hostile input (``station_tools.hostile``, ``.hostile_rest``).

Witnesses first: drivers with cards of known balances charging on real (simulated) piles
while the hostile input goes on, so that the input meets live sessions. Afterwards the
witnesses end their charges as drivers do (swipe, unplug), and the checks say:

* **alive**: every service process still runs and answers ``/health`` and ``/ready``;
* **no server errors**: no bus handler raised (``station_bus_handler_errors``), no service
  logged an error while the run lasted (and, for REST, no 5xx: ``hostile_rest`` counts them);
* **exact ledgers**: every card's balance is its ledger's sum; its credits are exactly what
  was booked on it over REST; its debits are exactly its completed sessions' costs, one per
  session, and no debit names a session billing did not complete for that card;
* **exact billing**: each witness session is priced from the meter of the pile that
  delivered it (``total_energy = meter_stop - meter_start``, at most what the pile
  delivered, cost = energy x price under the station's default tariff);
* **no session left open**: once every car is unplugged, billing has no active session and
  no collector believes a pile is in a session. A session is legitimate only while a pile
  charges it, and after the run no simulated pile charges (the simulator is the ground
  truth of what the piles do), so none may be left: a session still active then is one
  that a forgery opened or wedged, and would be billed or block its pile forever;
* **every pile still charges**: a fresh card on each pile charges, stops and is billed
  exactly, so that no pile was left wedged by what it was told.

Each check gives a :class:`Verdict`; none raises, so a report shows them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from station_tools.rig import StationRig
from station_tools.simulator import Simulator
from station_tools.steps import REPEAT_WINDOW

PRICE = Decimal("1.20")
"""The station's default tariff (per kWh, VAT included), as the rig configures billing."""
OPENING = Decimal("100.00")
CENT = Decimal("0.01")
METER_SLACK = Decimal("0.01")
"""kWh a record may exceed what its pile delivered by (register rounding, at most 0.001)."""


@dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.name}" + (f": {self.detail}" if self.detail else "")


def report(verdicts: Sequence[Verdict]) -> str:
    return "\n".join(verdict.line() for verdict in verdicts)


def failed(verdicts: Sequence[Verdict]) -> list[Verdict]:
    return [verdict for verdict in verdicts if not verdict.ok]


@dataclass
class Cards:
    """Every card the run knows and what was booked on it over REST (credits only)."""

    credits: dict[str, Decimal] = field(default_factory=dict)
    """Card -> opening balance + top-ups + refunds booked; ``None``-free: exact."""
    loose: set[str] = field(default_factory=set)
    """Cards whose credits are not known exactly (issued by a fuzzer): sums only."""

    def issue(self, verification: httpx.Client, balance: Decimal = OPENING) -> str:
        uid = f"HOSTILE-{uuid.uuid4().hex[:10]}"
        body = {"uid": uid, "holder": "Witness", "balance": str(balance)}
        response = verification.post("/api/v1/cards", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"witness card not issued: {response.status_code} {response.text}")
        self.credits[uid] = balance
        return uid

    def top_up(self, verification: httpx.Client, uid: str, amount: Decimal) -> None:
        body = {"amount": str(amount), "reference": f"hostile-{uuid.uuid4().hex[:10]}"}
        response = verification.post(f"/api/v1/cards/{uid}/top-ups", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"top-up refused: {response.status_code} {response.text}")
        self.credits[uid] += amount

    @property
    def all(self) -> list[str]:
        return sorted(set(self.credits) | self.loose)


@dataclass
class Witness:
    """A driver charging on a pile while the hostile input goes on."""

    pile: str
    card: str
    meter_before: Decimal
    meter_after: Decimal | None = None
    session: str | None = None


async def _until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return True
        await asyncio.sleep(0.1)
    return False


def _active(billing: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = billing.get(
        "/api/v1/sessions", params={"status": "active", "limit": 1000, **filters}
    ).json()
    return found


def _sessions(billing: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    response = billing.get("/api/v1/sessions", params={"limit": 1000, **filters})
    response.raise_for_status()
    found: list[dict[str, Any]] = response.json()
    return found


async def start_witnesses(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    cards: Cards,
    where: Iterable[str],
) -> list[Witness]:
    """A fresh card charging on each pile of ``where``; each with its active session."""
    witnesses = []
    for pile in where:
        card = cards.issue(verification)
        witness = Witness(pile, card, piles.pile(pile).energy)
        await piles.plug(pile)
        await piles.swipe(pile, card)
        witnesses.append(witness)
    for witness in witnesses:
        if not await _until(
            lambda w=witness: _active(billing, pile_id=w.pile, card_uid=w.card), 15
        ):
            raise RuntimeError(f"witness on {witness.pile} did not start charging")
        witness.session = _active(billing, pile_id=witness.pile, card_uid=witness.card)[0]["id"]
        await _until(lambda w=witness: _flowing(piles, w), 15)
    return witnesses


def _flowing(piles: Simulator, witness: Witness) -> bool:
    """The witness's pile charges and its meter moved since the witness came."""
    pile = piles.pile(witness.pile)
    return pile.charging and pile.energy > witness.meter_before


async def end_witnesses(
    piles: Simulator, billing: httpx.Client, witnesses: Sequence[Witness], settle: float = 20.0
) -> None:
    """Each driver swipes again (if the pile still charges for them) and unplugs."""
    await asyncio.sleep(REPEAT_WINDOW)
    for witness in witnesses:
        if piles.pile(witness.pile).charging:
            await piles.swipe(witness.pile, witness.card)
    for witness in witnesses:
        pile = piles.pile(witness.pile)
        await _until(lambda pile=pile: not pile.charging, 10)
        await piles.unplug(witness.pile)
    for witness in witnesses:
        await _until(
            lambda w=witness: not _active(billing, pile_id=w.pile, card_uid=w.card), settle
        )
        witness.meter_after = piles.pile(witness.pile).energy


# -- the checks ------------------------------------------------------------------------------


def log_offsets(rig: StationRig) -> dict[str, int]:
    """Where each service's log ends now: errors are counted from here."""
    offsets = {}
    for process in rig:
        try:
            offsets[process.name] = process.log_file.stat().st_size
        except OSError:
            offsets[process.name] = 0
    return offsets


def _errors_in(log: Path, offset: int) -> list[str]:
    try:
        with log.open("rb") as file:
            file.seek(offset)
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return []
    markers = ('"level": "ERROR"', '"level": "CRITICAL"', "Traceback (most recent call last)")
    return [line[:300] for line in text.splitlines() if any(m in line for m in markers)]


async def alive(rig: StationRig, timeout: float = 15.0) -> Verdict:
    """Every process runs and answers ``/health`` and ``/ready`` (within ``timeout``)."""
    problems = []
    async with httpx.AsyncClient(timeout=3) as client:
        for process in rig:
            if not process.running():
                problems.append(f"{process.name} exited: {process.tail_log(5)}")
                continue
            deadline = time.monotonic() + timeout
            answers: dict[str, int | str] = {}
            while True:
                for path in ("/health", "/ready"):
                    try:
                        answers[path] = (await client.get(process.base_url + path)).status_code
                    except httpx.HTTPError as exc:
                        answers[path] = type(exc).__name__
                if all(code == 200 for code in answers.values()) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            if any(code != 200 for code in answers.values()):
                problems.append(f"{process.name} {answers}")
    names = ", ".join(process.name for process in rig)
    return Verdict("alive", not problems, "; ".join(problems) or f"{names}: /health and /ready 200")


def no_errors(rig: StationRig, offsets: Mapping[str, int]) -> Verdict:
    """No bus handler raised, and no service logged an error since ``offsets``."""
    problems = []
    handled = 0.0
    for process in rig:
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(process.base_url + "/metrics", timeout=5).text
            raised = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("station_bus_handler_errors_total{")
            )
            handled += raised
            if raised:
                problems.append(f"{process.name}: {raised:.0f} bus handler errors")
        errors = _errors_in(process.log_file, offsets.get(process.name, 0))
        if errors:
            problems.append(f"{process.name}: {len(errors)} error lines, first: {errors[0]}")
    detail = "; ".join(problems) or "no handler raised, no error logged"
    return Verdict("no server errors", not problems and handled == 0, detail)


def dropped(rig: StationRig) -> dict[str, float]:
    """Messages each service refused (its ``*_dropped_messages`` metric), for the report."""
    counts = {}
    for process in rig:
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(process.base_url + "/metrics", timeout=5).text
            total = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if "_dropped_messages_total{" in line and not line.startswith("#")
            )
            counts[process.name] = total
    return counts


def _cost(session: Mapping[str, Any]) -> Decimal:
    return Decimal(session["total_cost"]["incl_vat"]) if session.get("total_cost") else Decimal(0)


def _pending_debits(billing: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = billing.get("/api/v1/debits", params={"status": "pending"}).json()
    return found


async def ledgers(
    verification: httpx.Client, billing: httpx.Client, cards: Cards, settle: float = 30.0
) -> Verdict:
    """Balances, credits and debits of every card the run knows, exactly.

    A debit billing could not get answered (a forged reply took its place, verification
    was busy) stays pending and is asked for again every few seconds: the books are read
    once billing has none pending, or the pending ones are named as the problem.
    """
    problems: list[str] = []
    if not await _until(lambda: not _pending_debits(billing), settle):
        pending = [f"{d.get('session_id')}" for d in _pending_debits(billing)]
        problems.append(f"debits still pending after {settle:.0f} s: {', '.join(pending[:4])}")
    problems += _books(verification, billing, cards)
    detail = (
        "; ".join(problems[:8]) or f"{len(cards.all)} cards: balance = ledger sum = credits - costs"
    )
    return Verdict("exact ledgers", not problems, detail)


def _books(verification: httpx.Client, billing: httpx.Client, cards: Cards) -> list[str]:
    """What is wrong with the cards' books, if anything."""
    problems: list[str] = []
    for uid in cards.all:
        # Percent-encoded, dots too: a uid may hold "/", "?", spaces, or be ".." (rest.md).
        quoted = quote(uid, safe="").replace(".", "%2E")
        card = verification.get(f"/api/v1/cards/{quoted}")
        ledger = verification.get(f"/api/v1/cards/{quoted}/ledger")
        if card.status_code != 200 or ledger.status_code != 200:
            problems.append(f"{uid}: card {card.status_code}, ledger {ledger.status_code}")
            continue
        entries: list[dict[str, Any]] = ledger.json()["entries"]
        total = sum((Decimal(e["amount"]) for e in entries), Decimal(0))
        balance = Decimal(card.json()["balance"])
        if not total == Decimal(ledger.json()["balance"]) == balance:
            problems.append(
                f"{uid}: balance {balance}, ledger says {ledger.json()['balance']}, sum {total}"
            )
        if uid in cards.loose:
            continue
        credits = sum(
            (Decimal(e["amount"]) for e in entries if e["kind"] != "session_debit"), Decimal(0)
        )
        if credits != cards.credits[uid]:
            problems.append(f"{uid}: credits {credits}, booked over REST {cards.credits[uid]}")
        completed = {
            s["id"]: s for s in _sessions(billing, card_uid=uid) if s["status"] == "completed"
        }
        debits: dict[str, Decimal] = {}
        for entry in entries:
            if entry["kind"] != "session_debit":
                continue
            session = entry["session_id"]
            if session in debits:
                problems.append(f"{uid}: session {session} debited twice")
            debits[session] = debits.get(session, Decimal(0)) - Decimal(entry["amount"])
            if session not in completed:
                problems.append(
                    f"{uid}: debit {entry['amount']} for {session}, "
                    "which billing did not complete for this card"
                )
            elif debits[session] != _cost(completed[session]):
                cost = _cost(completed[session])
                problems.append(f"{uid}: session {session} debited {debits[session]}, costs {cost}")
        for session, record in completed.items():
            if _cost(record) > 0 and session not in debits:
                problems.append(f"{uid}: session {session} costs {_cost(record)}, never debited")
        expected = cards.credits[uid] - sum((_cost(s) for s in completed.values()), Decimal(0))
        if balance != expected:
            problems.append(f"{uid}: balance {balance}, credits less completed sessions {expected}")
    return problems


def billing_exact(billing: httpx.Client, witnesses: Sequence[Witness]) -> Verdict:
    """Each witness pile's sessions are priced from what the pile delivered."""
    problems: list[str] = []
    for witness in witnesses:
        records = [
            s
            for s in _sessions(billing, pile_id=witness.pile, card_uid=witness.card)
            if s["status"] == "completed"
        ]
        if witness.session not in {r["id"] for r in records}:
            problems.append(f"{witness.pile}: session {witness.session} not completed")
        billed = Decimal(0)
        for record in records:
            energy = Decimal(record["total_energy"])
            if energy != Decimal(record["meter_stop"]) - Decimal(record["meter_start"]):
                problems.append(f"{record['id']}: energy {energy} is not meter_stop - meter_start")
            expected = (energy * PRICE).quantize(CENT, rounding=ROUND_HALF_UP)
            # A tariff stored over REST (by a fuzzer) prices otherwise: only the default's
            # price is known here.
            default = record.get("tariff_version") is None
            if default and _cost(record) != expected:
                problems.append(
                    f"{record['id']}: cost {_cost(record)} for {energy} kWh, expected {expected}"
                )
            billed += energy
        if witness.meter_after is not None:
            delivered = witness.meter_after - witness.meter_before
            if billed > delivered + METER_SLACK:
                problems.append(
                    f"{witness.pile}: billed {billed} kWh, the pile delivered {delivered}"
                )
    detail = (
        "; ".join(problems[:8])
        or f"{len(witnesses)} witness sessions priced from their piles' meters"
    )
    return Verdict("exact billing", not problems, detail)


def station_piles(rig: StationRig) -> list[str]:
    """The station's piles as its console says now: the fuzzing may have decommissioned
    some (a console operation it may call), which then rightly charge no more."""
    answer = httpx.get(f"{rig.url('console')}/api/v1/piles", timeout=5)
    answer.raise_for_status()
    return [view["id"] for view in answer.json()]


def out_of_maintenance(rig: StationRig) -> Verdict:
    """Take every pile out of maintenance, as an operator would after the fuzzing put some
    in (a console operation it may call): the later checks need every pile in service."""
    problems: list[str] = []
    lifted = 0
    console = rig.url("console")
    for pile in station_piles(rig):
        view = httpx.get(f"{console}/api/v1/piles/{pile}", timeout=5)
        if view.status_code != 200:
            problems.append(f"{pile}: console answered {view.status_code}")
            continue
        if not view.json().get("maintenance"):
            continue
        body = {"active": False, "reason": "hostile run over", "who": "hostile checks"}
        answer = httpx.put(f"{console}/api/v1/piles/{pile}/maintenance", json=body, timeout=5)
        if answer.status_code != 200:
            problems.append(f"{pile}: maintenance not lifted ({answer.status_code})")
        lifted += 1
    detail = "; ".join(problems[:8]) or f"{lifted} piles the fuzzing put in maintenance lifted"
    return Verdict("maintenance lifted", not problems, detail)


async def no_session_open(billing: httpx.Client, rig: StationRig, settle: float = 20.0) -> Verdict:
    """No active session in billing, no collector in a session, once every car is gone."""

    def open_now() -> list[str]:
        found = [f"billing: {s['id']} on {s['pile_id']}" for s in _active(billing)]
        for charger in rig.layout.charger_ids():
            for pile in httpx.get(f"{rig.collector_url(charger)}/api/v1/piles", timeout=5).json():
                if pile["phase"] != "idle" or pile["session_id"] is not None:
                    found.append(
                        f"{charger}: {pile['pile_id']} {pile['phase']} {pile['session_id']}"
                    )
        return found

    await _until(lambda: not open_now(), settle)
    left = open_now()
    return Verdict(
        "no session left open", not left, "; ".join(left[:8]) or "none active, every pile idle"
    )


async def piles_charge(
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    cards: Cards,
    timeout: float = 30.0,
    pile_ids: Sequence[str] | None = None,
) -> Verdict:
    """Every pile (of ``pile_ids``, by default the simulated layout) charges a fresh card,
    stops on the second swipe, and bills it exactly."""
    problems: list[str] = []
    witnesses: list[Witness] = []
    for pile in piles.layout.pile_ids() if pile_ids is None else pile_ids:
        card = cards.issue(verification)
        witnesses.append(Witness(pile, card, piles.pile(pile).energy))
        await piles.plug(pile)
        await piles.swipe(pile, card)
    for witness in witnesses:
        if not await _until(lambda w=witness: _flowing(piles, w), timeout):
            problems.append(f"{witness.pile} did not charge")
    await end_witnesses(piles, billing, witnesses)
    for witness in witnesses:
        done = _sessions(billing, pile_id=witness.pile, card_uid=witness.card)
        if not any(s["status"] == "completed" and _cost(s) > 0 for s in done):
            problems.append(f"{witness.pile}: no completed, priced session")
        else:
            witness.session = done[0]["id"]
    exact = billing_exact(billing, [w for w in witnesses if w.session is not None])
    if not exact.ok:
        problems.append(exact.detail)
    detail = "; ".join(problems[:8]) or f"{len(witnesses)} piles charged and billed exactly"
    return Verdict("every pile still charges", not problems, detail)
