"""The collector's judgement of its piles, its bridge and the local server.

After a broker restart every client reconnects on its own backoff: a local server that comes
back a few seconds after this collector was never unreachable from it, and one that does not
come back within the allowance is.

At a start, what has not been heard yet is "not yet seen" for the start-up grace: not up, not
reported. After it, a charger none of whose piles answered is one ``zigbee_bridge_unseen``,
and each other silent pile its own ``pile_unreachable``. A pile seen and then silent is
reported ``misses x T1`` after its last answer, grace or not.
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
from station_protocol.messages import BreathAck, CollectorBreath, ServiceStatus
from station_protocol.zigbee import OnlineState
from station_runtime.bus import BrokerAddress, Bus, BusOptions
from station_runtime.deliveries import Delivery
from station_runtime.tasks import cancel_until_done
from station_tools.mosquitto import Mosquitto

T1 = 0.1
MISSES = 3
UNREACHABLE = FaultCode.LOCAL_SERVER_UNREACHABLE


def options(broker: Mosquitto, client_id: str, service: str) -> BusOptions:
    return BusOptions(broker=BrokerAddress.parse(broker.url), client_id=client_id, service=service)


@asynccontextmanager
async def watching(
    broker: Mosquitto, rejoin: float, piles: tuple[str, ...] = (), startup_grace: float = 0.0
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
            startup_grace=startup_grace,
        )
        beating = asyncio.create_task(watch.run())
        try:
            yield watch
        finally:
            watch.close()
            await cancel_until_done([beating, *tasks])


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


GRACE = 1.0
"""A short start-up grace (120 s by default), ten breath periods here."""
PILES = ("c1-p01", "c1-p02", "c1-p03")
BRIDGE_UNSEEN = FaultCode.ZIGBEE_BRIDGE_UNSEEN
BRIDGE_OFFLINE = FaultCode.ZIGBEE_BRIDGE_OFFLINE
PILE_UNREACHABLE = FaultCode.PILE_UNREACHABLE


async def breathing(watch: Watch) -> None:
    for _ in range(20):
        if watch.seq:
            return
        await asyncio.sleep(T1 / 2)
    raise AssertionError("the watch never breathed")


def reported(watch: Watch) -> set[tuple[str, str]]:
    return set(watch.board.active)


async def test_piles_not_yet_seen_are_quiet_in_the_grace_then_one_bulletin_for_the_charger(
    mosquitto: Mosquitto,
) -> None:
    async with (
        watching(mosquitto, rejoin=0.0, piles=PILES, startup_grace=GRACE) as watch,
        local_server(mosquitto),
    ):
        await breathing(watch)
        await asyncio.sleep(GRACE - 3 * T1)  # well past misses x T1, within the grace
        assert reported(watch) == set()
        assert not any(watch.is_up(pile) or watch.seen(pile) for pile in PILES)
        assert shown_up(watch, "c1-p01") == 0

        await asyncio.sleep(3 * T1 + 2 * T1)  # the grace is over: one bulletin, not three
        assert reported(watch) == {("c1", BRIDGE_UNSEEN.value)}

        # A pile answers: the charger's link is up, and each pile still silent is its own news.
        watch.acked("c1-p01", watch.seq)
        await asyncio.sleep(T1 / 2)
        assert watch.seen("c1-p01") and watch.is_up("c1-p01")
        assert reported(watch) == {
            ("c1-p02", PILE_UNREACHABLE.value),
            ("c1-p03", PILE_UNREACHABLE.value),
        }
        report = watch.board.active[("c1-p02", PILE_UNREACHABLE.value)]
        assert report.detail == {"cause": "never_answered"}


async def test_a_pile_seen_then_silent_is_reported_after_misses_x_t1_even_in_the_grace(
    mosquitto: Mosquitto,
) -> None:
    """The grace is for what was never heard: invariant 4's bound for a pile is untouched."""
    async with watching(mosquitto, rejoin=0.0, piles=PILES, startup_grace=30.0) as watch:
        await breathing(watch)
        watch.acked("c1-p01", watch.seq)
        answered = asyncio.get_running_loop().time()
        while not watch.board.is_active("c1-p01", PILE_UNREACHABLE):
            assert asyncio.get_running_loop().time() - answered < 3 * T1 + 0.5
            await asyncio.sleep(T1 / 10)
        assert asyncio.get_running_loop().time() - answered >= 3 * T1 - 0.01
        assert reported(watch) == {("c1-p01", PILE_UNREACHABLE.value)}


async def test_a_bridge_said_offline_before_it_was_ever_seen_is_reported_after_the_grace(
    mosquitto: Mosquitto,
) -> None:
    """Most likely the retained last will of its earlier life: it may be starting."""
    async with (
        watching(mosquitto, rejoin=0.0, piles=PILES, startup_grace=GRACE) as watch,
        local_server(mosquitto),
    ):
        await breathing(watch)
        watch.bridge(False)
        await asyncio.sleep(GRACE / 2)
        assert reported(watch) == set()
        await asyncio.sleep(GRACE / 2 + 2 * T1)
        assert reported(watch) == {("c1", BRIDGE_OFFLINE.value)}
        watch.bridge(True)
        await asyncio.sleep(T1 / 2)
        assert reported(watch) == set()


async def test_a_bridge_seen_online_that_goes_offline_is_reported_at_once_in_the_grace(
    mosquitto: Mosquitto,
) -> None:
    async with watching(mosquitto, rejoin=0.0, piles=PILES, startup_grace=30.0) as watch:
        await breathing(watch)
        watch.bridge(True)
        watch.bridge(False)
        await asyncio.sleep(T1 / 2)
        assert reported(watch) == {("c1", BRIDGE_OFFLINE.value)}


async def test_a_local_server_stopped_on_purpose_gets_the_grace_and_a_crash_does_not(
    mosquitto: Mosquitto,
) -> None:
    async with watching(mosquitto, rejoin=0.0, startup_grace=GRACE) as watch:
        async with local_server(mosquitto):
            for _ in range(40):
                if watch.server_seen:
                    break
                await asyncio.sleep(T1 / 2)
            assert watch.server_seen
        # What its bus says as it stops on purpose (its last will has no ``stopped``).
        stopped = ServiceStatus(state=OnlineState.OFFLINE, service="faults", stopped=True)
        watch.local_server_status(stopped.state is OnlineState.ONLINE, bool(stopped.stopped))
        assert not await until_unreachable(watch, timeout=GRACE - 3 * T1)
        assert await until_unreachable(watch, timeout=3 * T1 + 1.0)

    async with watching(mosquitto, rejoin=0.0, startup_grace=GRACE) as watch:
        async with local_server(mosquitto):
            for _ in range(40):
                if watch.server_seen:
                    break
                await asyncio.sleep(T1 / 2)
        crashed = asyncio.get_running_loop().time()
        watch.local_server_status(False, False)  # its last will
        assert await until_unreachable(watch, timeout=3 * T1 + 1.0)
        assert asyncio.get_running_loop().time() - crashed < GRACE
