"""Hostile input on the REST APIs: schemathesis against every service's OpenAPI.

Every operation of every service that serves HTTP (verification, billing, faults, sync,
central, each collector), as its ``/openapi.json`` describes it, gets ``budget`` cases of
positive data (what the schema allows) and ``budget`` of negative data (what it refuses),
drawn by schemathesis' hypothesis strategies. A share of the cases name the station's real
resources in their path (its piles, the sessions of the run's drivers, tariffs, faults, the
cards the fuzzing itself issued), so that they reach real rows rather than only 404s.
Central is called with the admin token, so that its handlers run rather than its 401.

:class:`RestReport` counts the requests per endpoint, by mode and by status, and keeps each
5xx with a ``curl`` line that repeats it. What the station must still be afterwards is
checked by :mod:`station_tools.hostile_checks`.

Build and test code: it needs schemathesis and hypothesis, dev-only packages.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Err

from station_tools import hostile_checks as checks
from station_tools.central import register_station
from station_tools.hostile_checks import Cards, Verdict
from station_tools.rig import StationRig
from station_tools.simulator import Simulator

HOSTILE_STATION = "hostile-station"
"""A station registered at central for the run, whose token the fuzzing may rotate."""


@dataclass
class Endpoint:
    modes: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    unsatisfiable: list[str] = field(default_factory=list)
    """Modes schemathesis can draw nothing for (no negative data for ``GET /health``)."""


@dataclass
class RestReport:
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)
    """Every 5xx, with the ``curl`` that repeats it."""
    unreachable: list[str] = field(default_factory=list)
    """Requests that got no answer at all (a dead or hung service)."""
    problems: list[str] = field(default_factory=list)
    """Operations schemathesis could not generate for (its own errors, not the station's)."""
    seed: int = 0

    def endpoint(self, key: str) -> Endpoint:
        return self.endpoints.setdefault(key, Endpoint())

    @property
    def total(self) -> int:
        return sum(sum(e.modes.values()) for e in self.endpoints.values())

    def table(self) -> str:
        lines = [f"{'endpoint':62} {'pos':>5} {'neg':>5}  statuses"]
        for key in sorted(self.endpoints):
            e = self.endpoints[key]
            codes = " ".join(f"{code}x{n}" for code, n in sorted(e.statuses.items()))
            lines.append(f"{key:62} {e.modes['positive']:>5} {e.modes['negative']:>5}  {codes}")
        fives = sum(n for e in self.endpoints.values() for c, n in e.statuses.items() if c >= 500)
        lines.append(
            f"{self.total} requests on {len(self.endpoints)} endpoints (seed {self.seed}); "
            f"{fives} answered 5xx; {len(self.unreachable)} unanswered"
        )
        return "\n".join(lines)


@dataclass
class RestFuzz:
    """``budget`` positive and ``budget`` negative cases per operation of each service."""

    services: Mapping[str, str]
    """Service name -> its HTTP root."""
    headers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    known: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Path parameter name -> real values a share of the cases use."""
    cards: Cards = field(default_factory=Cards)
    """Cards the fuzzing issues are added here (as ``loose``), for the ledger check."""
    budget: int = 10
    seed: int = 0
    streams: Collection[str] = ()
    """Operations that answer an endless stream (``console GET /api/v1/events``): listed
    in the report, not fuzzed (a case would hold its connection until the timeout)."""

    def run(self) -> RestReport:
        report = RestReport(seed=self.seed)
        for service, base in self.services.items():
            schema = schemathesis.openapi.from_url(f"{base}/openapi.json", timeout=10)
            for result in schema.get_all_operations():
                if isinstance(result, Err):
                    report.problems.append(f"{service}: {result.err()}"[:300])
                    continue
                operation = result.ok()
                key = f"{service} {operation.method.upper()} {operation.path}"
                if key in self.streams:
                    report.endpoint(key).unsatisfiable.append("stream")
                    continue
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    self._fuzz(operation, mode, service, base, key, report)
        return report

    def _strategy(self, operation: Any, mode: GenerationMode) -> st.SearchStrategy[Case[Any]]:
        strategies = [operation.as_strategy(generation_mode=mode)]
        names = {p.name for p in operation.path_parameters}
        for name in sorted(names):
            values = list(self.known.get(name, ()))
            if name == "uid":
                values += sorted(self.cards.loose)[-3:]
            for value in values[:4]:
                fixed = {name: value}
                strategies.append(
                    operation.as_strategy(generation_mode=mode, path_parameters=fixed)
                )
        return st.one_of(strategies)

    def _fuzz(
        self,
        operation: Any,
        mode: GenerationMode,
        service: str,
        base: str,
        key: str,
        report: RestReport,
    ) -> None:
        endpoint = report.endpoint(key)
        headers = dict(self.headers.get(service, {}))

        @seed(self.seed)
        @settings(
            max_examples=self.budget,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(self._strategy(operation, mode))
        def call(case: Case[Any]) -> None:
            endpoint.modes[mode.value] += 1
            try:
                response = case.call(base_url=base, headers=headers, timeout=15)
            except OSError as exc:  # requests' errors: no answer at all
                report.unreachable.append(f"{key}: {type(exc).__name__}: {exc}")
                return
            endpoint.statuses[response.status_code] += 1
            if response.status_code >= 500:
                curl = case.as_curl_command(headers=headers)
                report.server_errors.append(f"{key} -> {response.status_code}: {curl}")
            if service == "verification" and 200 <= response.status_code < 300:
                self._note_card(response.content)

        try:
            call()
        except Unsatisfiable:
            endpoint.unsatisfiable.append(mode.value)
        except Exception as exc:  # schemathesis' own trouble with a schema, reported
            report.problems.append(f"{key} {mode.value}: {type(exc).__name__}: {exc}"[:300])

    def _note_card(self, content: bytes) -> None:
        try:
            body = json.loads(content)
        except ValueError:
            return
        if isinstance(body, dict):
            uid = body.get("uid", body.get("card_uid"))
            if isinstance(uid, str) and uid not in self.cards.credits:
                self.cards.loose.add(uid)


# -- a whole run: a witness, the fuzzing, the checks -----------------------------------------


@dataclass
class RestRun:
    report: RestReport
    verdicts: list[Verdict]

    def text(self) -> str:
        lines = ["hostile REST input, per endpoint:", self.report.table()]
        lines += [f"5xx: {line}" for line in self.report.server_errors[:20]]
        lines += [f"unanswered: {line}" for line in self.report.unreachable[:10]]
        lines += [f"schemathesis could not generate: {line}" for line in self.report.problems]
        lines += ["checks:", checks.report(self.verdicts)]
        return "\n".join(lines)


def _known(rig: StationRig, billing: httpx.Client, sessions: Sequence[str]) -> dict[str, list[str]]:
    faults = httpx.get(f"{rig.url('faults')}/api/v1/faults", timeout=5).json()
    tariffs = billing.get("/api/v1/tariffs").json()
    return {
        "pile_id": rig.layout.pile_ids()[:4],
        "session_id": list(sessions),
        "tariff_id": [t["id"] for t in tariffs if isinstance(t, dict) and "id" in t][:2],
        "fault_id": [str(f["id"]) for f in faults if isinstance(f, dict) and "id" in f][:2],
        "bulletin_id": [str(f["id"]) for f in faults if isinstance(f, dict) and "id" in f][:2],
        "station_id": [HOSTILE_STATION],
    }


async def _station_piles_charge(
    rig: StationRig,
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    cards: Cards,
) -> Verdict:
    """Every pile the station still has charges; the ones the fuzzing decommissioned are
    named in the verdict."""
    still = checks.station_piles(rig)
    verdict = await checks.piles_charge(piles, verification, billing, cards, pile_ids=still)
    gone = sorted(set(rig.layout.pile_ids()) - set(still))
    if gone:
        verdict = Verdict(verdict.name, verdict.ok, f"{verdict.detail}; decommissioned: {gone}")
    return verdict


async def hostile_rest(
    rig: StationRig,
    piles: Simulator,
    verification: httpx.Client,
    billing: httpx.Client,
    *,
    budget: int = 10,
    seed: int = 0,
) -> RestRun:
    """Schemathesis against every service while a driver charges; then the checks."""
    cards = Cards()
    offsets = checks.log_offsets(rig)
    witnesses = await checks.start_witnesses(piles, verification, billing, cards, ["c2-p01"])
    register_station(rig.url("central"), rig.admin_token, HOSTILE_STATION)
    names = ("verification", "billing", "faults", "sync", "console")
    services = {name: rig.url(name) for name in names}
    services["central"] = rig.url("central")
    for charger in rig.layout.charger_ids():
        services[f"collector-{charger}"] = rig.collector_url(charger)
    fuzz = RestFuzz(
        services,
        headers={"central": {"Authorization": f"Bearer {rig.admin_token}"}},
        known=_known(rig, billing, [w.session for w in witnesses if w.session]),
        cards=cards,
        budget=budget,
        seed=seed,
        streams={"console GET /api/v1/events"},
    )
    report = fuzz.run()
    lifted = checks.out_of_maintenance(rig)
    await checks.end_witnesses(piles, billing, witnesses)
    fives = report.server_errors + [f"no answer: {line}" for line in report.unreachable]
    verdicts = [
        await checks.alive(rig),
        Verdict("no 5xx", not fives, "; ".join(fives[:5]) or f"{report.total} requests, none 5xx"),
        await checks.no_session_open(billing, rig),
        checks.billing_exact(billing, witnesses),
        await _station_piles_charge(rig, piles, verification, billing, cards),
        await checks.ledgers(verification, billing, cards),
    ]
    verdicts.insert(1, checks.no_errors(rig, offsets))
    verdicts.append(lifted)
    return RestRun(report, verdicts)
