"""A follower's pile set: the layout first, then the console's word whole."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from station_protocol.ids import Layout
from station_protocol.messages import StationPiles
from station_runtime.pile_set import PileSet, PileSetChange

AT = datetime(2026, 12, 5, 12, tzinfo=UTC)


def word(revision: int, **chargers: list[str]) -> StationPiles:
    return StationPiles(chargers=chargers, revision=revision, changed_at=AT)


async def test_the_first_word_replaces_the_layout_and_listeners_hear_what_changed() -> None:
    piles = PileSet.of(Layout(2, 2).pile_ids())
    heard: list[PileSetChange] = []
    piles.on_change(heard.append)

    change = await piles.apply(word(3, c1=["c1-p01", "c1-p02", "c1-p13"], c2=["c2-p02"]))

    assert change == PileSetChange(added=("c1-p13",), removed=("c2-p01",), revision=3)
    assert heard == [change]
    assert piles.pile_ids() == ["c1-p01", "c1-p02", "c1-p13", "c2-p02"]
    assert piles.revision == 3
    assert "c2-p01" not in piles


async def test_a_word_that_changes_nothing_is_not_news() -> None:
    piles = PileSet.of(Layout(1, 2).pile_ids())
    heard: list[PileSetChange] = []

    async def listener(change: PileSetChange) -> None:
        heard.append(change)

    piles.on_change(listener)
    assert not await piles.apply(word(0, c1=["c1-p01", "c1-p02"]))
    assert heard == []
    assert piles.revision == 0


async def test_a_collector_follows_only_its_own_charger() -> None:
    piles = PileSet.of(Layout(2, 2).pile_ids(), charger="c2")
    assert piles.pile_ids() == ["c2-p01", "c2-p02"]

    change = await piles.apply(word(1, c1=["c1-p01", "c1-p05"], c2=["c2-p01", "c2-p10"]))

    assert change.added == ("c2-p10",)
    assert change.removed == ("c2-p02",)
    assert piles.piles_of("c1") == []


def test_the_pile_order_is_numeric() -> None:
    piles = PileSet({"c10-p01", "c2-p10", "c2-p09"})
    assert piles.pile_ids() == ["c2-p09", "c2-p10", "c10-p01"]


def test_a_word_listing_a_pile_under_another_charger_is_refused() -> None:
    with pytest.raises(ValidationError, match="not piles of c1"):
        word(1, c1=["c2-p01"])
    with pytest.raises(ValidationError, match="twice"):
        word(1, c1=["c1-p01", "c1-p01"])
