"""Central's replication settings and metrics, without servers: the URL central connects
with, and how ``pg_stat_replication`` rows become the gauges the alerts read."""

from __future__ import annotations

import math

from station_central.core.config import Settings
from station_central.replication import Replica, ReplicationState
from station_runtime.migrations import make_engine


def test_central_connects_to_whichever_host_takes_writes_with_the_modes_commit() -> None:
    settings = Settings(
        database_url="postgresql://central:pw@ignored:5432/central",
        database_hosts="pg-a:5432, pg-b:5433",
        replication="sync",
    )

    engine = make_engine(settings.database("central"))
    _, options = engine.dialect.create_connect_args(engine.url)

    assert (options["host"], options["port"]) == ("pg-a,pg-b", "5432,5433")
    assert options["target_session_attrs"] == "read-write"
    assert options["options"] == "-c synchronous_commit=on"
    alone = Settings(database_url="postgresql://central:pw@db:5432/central")
    assert alone.database("central").query["options"] == "-c synchronous_commit=local"
    sqlite = Settings(database_url="sqlite:///central.db", replication="sync")
    assert sqlite.database("central").query == {}


def test_the_gauges_show_the_worst_streaming_standby_and_nan_without_one() -> None:
    caught_up = Replica("standby", "streaming", "sync", lag_bytes=0, lag_seconds=None)
    behind = Replica("other", "streaming", "async", lag_bytes=4096, lag_seconds=0.25)
    starting = Replica("new", "catchup", "async", lag_bytes=10**9, lag_seconds=None)

    state = ReplicationState.of([caught_up, behind, starting])
    assert (state.standby_connected, state.synchronous) == (True, True)
    assert (state.lag_seconds, state.lag_bytes) == (0.25, 4096)

    alone = ReplicationState.of([starting])
    assert (alone.standby_connected, alone.synchronous) == (False, False)
    assert math.isnan(alone.lag_seconds) and math.isnan(alone.lag_bytes)
