"""How far central's standby is behind, read from the primary's ``pg_stat_replication``.

Central exports it as metrics (lag in seconds and bytes, the standby present, commits
waiting for it) so that Prometheus alerts when the copy falls behind or goes away: in
``async`` mode the lag is what a failover would lose, and in ``sync`` mode a missing standby
means confirmed records live on one server only.

Only the primary has the view's rows; central is always on the primary (libpq
``target_session_attrs=read-write``), and its role needs ``pg_monitor`` to see the lag
columns (without it they read NULL, exported as NaN).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass

from sqlalchemy import Engine, text

from station_central.metrics import CentralMetrics

log = logging.getLogger("station.central.replication")

NAN = math.nan

STANDBYS = text(
    """
    SELECT application_name, state, sync_state,
           pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) AS lag_bytes,
           EXTRACT(EPOCH FROM flush_lag) AS lag_seconds
    FROM pg_stat_replication
    """
)
"""Flush, not replay: a failover loses what the standby has not flushed, and replays the
rest before it accepts writes."""


@dataclass(frozen=True)
class Replica:
    """One WAL sender's view of its standby."""

    name: str
    state: str
    sync_state: str
    lag_bytes: float | None
    lag_seconds: float | None


@dataclass(frozen=True)
class ReplicationState:
    """What the metrics show: the worst streaming standby's lag, and whether any is there."""

    standby_connected: bool
    synchronous: bool
    lag_seconds: float
    lag_bytes: float

    @classmethod
    def of(cls, replicas: list[Replica]) -> ReplicationState:
        streaming = [r for r in replicas if r.state == "streaming"]
        if not streaming:
            # No standby, no lag: NaN keeps the lag alert quiet while the absence alert speaks.
            return cls(False, False, NAN, NAN)
        return cls(
            standby_connected=True,
            synchronous=any(r.sync_state in ("sync", "quorum") for r in streaming),
            lag_seconds=max(_seconds(r) for r in streaming),
            lag_bytes=max(NAN if r.lag_bytes is None else r.lag_bytes for r in streaming),
        )


def _seconds(replica: Replica) -> float:
    """``flush_lag`` is NULL once the standby has caught up and the primary is idle: no lag.
    A NULL with bytes outstanding (no ``pg_monitor``) is unknown."""
    if replica.lag_seconds is not None:
        return replica.lag_seconds
    return 0.0 if replica.lag_bytes == 0 else NAN


def read_replicas(engine: Engine) -> list[Replica]:
    with engine.connect() as connection:
        rows = connection.execute(STANDBYS).all()
    return [
        Replica(
            name=str(name),
            state=str(state),
            sync_state=str(sync_state),
            lag_bytes=None if lag_bytes is None else float(lag_bytes),
            lag_seconds=None if lag_seconds is None else float(lag_seconds),
        )
        for name, state, sync_state, lag_bytes, lag_seconds in rows
    ]


def show(metrics: CentralMetrics, state: ReplicationState) -> None:
    metrics.standby_connected.set(1 if state.standby_connected else 0)
    metrics.replication_synchronous.set(1 if state.synchronous else 0)
    metrics.replication_lag_seconds.set(state.lag_seconds)
    metrics.replication_lag_bytes.set(state.lag_bytes)


@dataclass(frozen=True)
class ReplicationWatch:
    """Samples the replication every ``interval`` seconds into central's gauges."""

    engine: Engine
    metrics: CentralMetrics
    interval: float

    async def run(self) -> None:
        failing = False
        while True:
            try:
                state = ReplicationState.of(await asyncio.to_thread(read_replicas, self.engine))
            except Exception as exc:
                # The primary is away (a failover under way): say so once, keep trying. The
                # watch never dies: a dead watch would freeze the gauges at their last values.
                if not failing:
                    log.warning(
                        "replication not readable",
                        extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}"},
                    )
                failing = True
                self.metrics.replication_samples.labels(outcome="failed").inc()
            else:
                if failing:
                    log.info("replication readable again")
                failing = False
                show(self.metrics, state)
                self.metrics.replication_samples.labels(outcome="read").inc()
            await asyncio.sleep(self.interval)
