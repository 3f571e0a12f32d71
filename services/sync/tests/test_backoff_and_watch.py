"""The retry pace and the fault rule, each on its own (pure code, no I/O)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from station_sync.backoff import Backoff
from station_sync.watch import CentralWatch

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_backoff_doubles_with_jitter_up_to_its_maximum() -> None:
    backoff = Backoff(minimum=1.0, maximum=8.0, rng=random.Random(7))

    delays = [backoff.delay() for _ in range(8)]

    for base, delay in zip([1, 2, 4, 8, 8, 8, 8, 8], delays, strict=True):
        assert 0.5 * base <= delay <= base
    assert len(set(delays)) == len(delays), "jitter: no two stations retry in lockstep"
    backoff.reset()
    assert 0.5 <= backoff.delay() <= 1.0


def test_the_fault_is_raised_after_the_threshold_and_cleared_when_drained() -> None:
    watch = CentralWatch(threshold=timedelta(seconds=300))

    assert watch.fault(T0, overdue=0) is False
    watch.failed(T0, "central unreachable")
    watch.failed(T0 + timedelta(seconds=200), "central unreachable")
    assert watch.fault(T0 + timedelta(seconds=299), overdue=50) is None
    assert watch.fault(T0 + timedelta(seconds=300), overdue=50) is True
    assert watch.unreachable_for(T0 + timedelta(seconds=300)) == 300

    watch.succeeded()
    assert watch.fault(T0 + timedelta(seconds=301), overdue=20) is None, "still catching up"
    assert watch.fault(T0 + timedelta(seconds=302), overdue=0) is False


def test_a_short_outage_raises_nothing() -> None:
    watch = CentralWatch(threshold=timedelta(seconds=300))
    watch.failed(T0, "central answered 503")
    watch.succeeded()
    watch.failed(T0 + timedelta(seconds=250), "central answered 503")

    assert watch.fault(T0 + timedelta(seconds=400), overdue=5) is None
