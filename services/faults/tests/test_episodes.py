"""The episode store on SQLite and on PostgreSQL: hold-down, idempotence, two replicas racing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from station_faults.episodes import (
    EpisodeStore,
    HistoryFilter,
    RaiseOutcome,
    Sighting,
    episode_detail,
)
from station_faults.main import SPEC
from station_runtime.migrations import make_engine, migrate
from station_tools.postgres import TEST_SETTINGS, Postgres

HOLD_DOWN = timedelta(seconds=10)
START = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    with Postgres(settings=TEST_SETTINGS) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EpisodeStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'faults.db'}"
    else:
        server: Postgres = request.getfixturevalue("postgres")
        url = server.create_database(f"faults_{uuid.uuid4().hex[:12]}")
    engine = make_engine(url)
    assert SPEC.migrations is not None
    migrate(engine, SPEC.migrations, SPEC.version_table)
    migrate(engine, SPEC.migrations, SPEC.version_table)  # a restart migrates: nothing changes
    try:
        yield EpisodeStore(engine)
    finally:
        engine.dispose()


def sighting(source: str = "c1-p01", code: str = "pile_unreachable") -> Sighting:
    return Sighting(
        code=code,
        severity="major",
        source=source,
        charger="c1",
        pile_id=source,
        since=START - timedelta(seconds=3),
        detected_at=START,
        detail={"misses": "3"},
    )


def test_a_fault_back_within_the_hold_down_continues_its_episode(store: EpisodeStore) -> None:
    first = store.raise_fault(sighting(), START, HOLD_DOWN)
    assert first.outcome is RaiseOutcome.OPENED
    assert store.raise_fault(sighting(), START, HOLD_DOWN).outcome is RaiseOutcome.ALREADY_OPEN

    cleared = store.clear_fault("c1-p01", "pile_unreachable", START + timedelta(seconds=5))
    assert cleared is not None and cleared.cleared_at == START + timedelta(seconds=5)
    assert store.clear_fault("c1-p01", "pile_unreachable", START + timedelta(seconds=6)) is None
    again = replace(sighting(), detail={"cause": "zigbee2mqtt_availability"})
    back = store.raise_fault(again, START + timedelta(seconds=14), HOLD_DOWN)

    assert back.outcome is RaiseOutcome.REOPENED
    assert episode_detail(back.episode) == {"cause": "zigbee2mqtt_availability"}
    assert back.episode.id == first.episode.id
    assert (back.episode.flaps, back.episode.cleared_at) == (1, None)
    assert back.episode.raised_at == START
    assert back.episode.since == START - timedelta(seconds=3)

    store.clear_fault("c1-p01", "pile_unreachable", START + timedelta(seconds=20))
    later = store.raise_fault(sighting(), START + timedelta(seconds=31), HOLD_DOWN)

    assert later.outcome is RaiseOutcome.OPENED
    assert later.episode.id != first.episode.id
    history = store.history(HistoryFilter(source="c1-p01"))
    assert [e.id for e in history] == [later.episode.id, first.episode.id]
    assert history[1].cleared_at == START + timedelta(seconds=20)


def test_two_replicas_raising_at_once_open_one_episode(store: EpisodeStore) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda _: store.raise_fault(sighting("c2-p05"), START, HOLD_DOWN), range(8))
        )

    assert [r.outcome for r in results].count(RaiseOutcome.OPENED) == 1
    assert len({r.episode.id for r in results}) == 1
    assert len(store.open_episodes()) == 1


def test_a_clear_for_another_reason_leaves_the_fault_standing(store: EpisodeStore) -> None:
    offline = Sighting(
        code="collector_offline",
        severity="critical",
        source="c3",
        charger="c3",
        pile_id=None,
        since=START,
        detected_at=START,
        detail={"reason": "breaths_missed"},
    )
    store.raise_fault(offline, START, HOLD_DOWN)

    assert store.clear_fault("c3", "collector_offline", START, only_reason="last_will") is None
    assert len(store.open_episodes()) == 1
    assert store.clear_fault("c3", "collector_offline", START) is not None


def test_the_first_acknowledgement_stands(store: EpisodeStore) -> None:
    episode = store.raise_fault(sighting(), START, HOLD_DOWN).episode

    first = store.acknowledge(episode.id, "li.wei", START + timedelta(minutes=1))
    second = store.acknowledge(episode.id, "zhang.min", START + timedelta(minutes=2))

    assert first is not None and second is not None
    assert (second.acked_by, second.acked_at) == ("li.wei", START + timedelta(minutes=1))
    assert store.acknowledge("no-such-episode", "li.wei", START) is None


def test_the_newest_breath_is_kept(store: EpisodeStore) -> None:
    store.record_breath("c1", 7, 1.0, START)
    store.record_breath("c1", 9, 0.5, START + timedelta(seconds=2))
    store.record_breath("c1", 8, 1.0, START + timedelta(seconds=1))  # a late, older breath

    link = store.link("c1")
    assert link is not None
    assert (link.last_seq, link.t1, link.last_breath_at) == (9, 0.5, START + timedelta(seconds=2))
    assert [link.charger for link in store.links()] == ["c1"]
