"""The collector's judgement of the local server after its own link comes back.

After a broker restart every client reconnects on its own backoff: a local server that comes
back a few seconds after this collector was never unreachable from it, and one that does not
come back within the allowance is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from station_collector.faults import FaultBoard
from station_collector.metrics import CollectorMetrics
from station_collector.watch import Watch
from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.faults import FaultCode
from station_protocol.messages import BreathAck, CollectorBreath
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Delivery
from station_tools.mosquitto import Mosquitto

T1 = 0.1
MISSES = 3
UNREACHABLE = FaultCode.LOCAL_SERVER_UNREACHABLE


def options(broker: Mosquitto, client_id: str, service: str) -> BusOptions:
    return BusOptions(broker=BrokerAddress.parse(broker.url), client_id=client_id, service=service)


@asynccontextmanager
async def watching(
    broker: Mosquitto, rejoin: float, piles: tuple[str, ...] = ()
) -> AsyncIterator[Watch]:
    """A collector's watch of charger c1 and ``piles``, breathing every T1 from now on."""
    tasks: set[asyncio.Task[object]] = set()

    def spawn(coroutine: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async with Bus(options(broker, "collector-c1", "collector")) as bus:
        await bus.wait_connected(5)
        watch = Watch.of(
            list(piles),
            charger="c1",
            t1=T1,
            misses=MISSES,
            bus=bus,
            zigbee=ZigbeeChannels.for_charger("c1"),
            board=FaultBoard("c1", bus),
            metrics=CollectorMetrics.on(CollectorRegistry()),
            spawn=spawn,
            rejoin=rejoin,
        )
        beating = asyncio.create_task(watch.run())
        try:
            yield watch
        finally:
            beating.cancel()
            watch.close()
            for task in [beating, *tasks]:
                task.cancel()
            await asyncio.gather(beating, *tasks, return_exceptions=True)


@asynccontextmanager
async def local_server(broker: Mosquitto) -> AsyncIterator[None]:
    """The faults service's part in the breath: answer every collector breath."""
    bus = Bus(options(broker, "faults-test", "faults"))

    async def answer(delivery: Delivery[CollectorBreath]) -> BreathAck:
        breath = delivery.body
        return BreathAck(charger=breath.charger, seq=breath.seq)

    bus.serve(channels.COLLECTOR_BREATH, answer)
    async with bus:
        await bus.wait_connected(5)
        yield


async def until_unreachable(watch: Watch, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if watch.board.is_active("c1", UNREACHABLE):
            return True
        await asyncio.sleep(T1 / 2)
    return False


async def test_a_local_server_that_rejoins_after_the_collector_is_not_unreachable(
    mosquitto: Mosquitto,
) -> None:
    # The collector is back first; the local server 6 breaths later (past misses x T1).
    async with watching(mosquitto, rejoin=3.0) as watch:
        await asyncio.sleep(6 * T1)
        async with local_server(mosquitto):
            assert not await until_unreachable(watch, timeout=4.0)
            assert watch.server_last_ack is not None


async def test_without_the_allowance_the_same_late_rejoin_is_reported(
    mosquitto: Mosquitto,
) -> None:
    """The test above can fail: with no allowance the collector blames the late server."""
    async with watching(mosquitto, rejoin=0.0) as watch:
        await asyncio.sleep(6 * T1)
        assert watch.board.is_active("c1", UNREACHABLE)
        async with local_server(mosquitto):
            # ... and clears it at the first answer.
            for _ in range(40):
                if not watch.board.is_active("c1", UNREACHABLE):
                    break
                await asyncio.sleep(T1)
            assert not watch.board.is_active("c1", UNREACHABLE)


async def test_a_local_server_that_stays_away_is_reported_after_the_allowance(
    mosquitto: Mosquitto,
) -> None:
    async with watching(mosquitto, rejoin=0.5) as watch:
        assert not watch.board.is_active("c1", UNREACHABLE)
        assert await until_unreachable(watch, timeout=10.0)
        report = watch.board.active[("c1", UNREACHABLE.value)]
        assert report.detail == {"misses": "3", "t1": "0.1"}


def shown_up(watch: Watch, pile: str) -> float:
    """The ``station_collector_pile_up`` gauge of ``pile``, as Prometheus would scrape it."""
    [family] = watch.metrics.pile_up.collect()
    wanted = {"charger": watch.charger, "pile": pile}
    return next(sample.value for sample in family.samples if sample.labels == wanted)


async def test_a_pile_is_up_only_once_it_has_answered(mosquitto: Mosquitto) -> None:
    """Before its first answer a pile is not known to be alive: no charge may start on it."""
    async with watching(mosquitto, rejoin=0.0, piles=("c1-p01",)) as watch:
        for _ in range(20):
            if watch.seq:
                break
            await asyncio.sleep(T1 / 2)
        assert not watch.is_up("c1-p01")
        assert shown_up(watch, "c1-p01") == 0

        watch.acked("c1-p01", watch.seq)  # what a pile_state with this breath_ack says

        assert watch.is_up("c1-p01")
        assert shown_up(watch, "c1-p01") == 1
