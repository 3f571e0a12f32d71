"""The simulator as a process (``python -m station_tools.simulator``), driven by its control
topics and by the ``station pile`` commands, as a demo or an end-to-end test drives it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from station_protocol import channels
from station_protocol.channels import ZigbeeChannels
from station_protocol.simulator import PileControl, PileControlCommand, SimulatorStatus
from station_protocol.zigbee import (
    BridgeEvent,
    ChargeCommand,
    DeviceRenameRequest,
    Display,
    DisplayCommand,
    PermitJoinRequest,
    encode,
)
from station_runtime.bus import BrokerAddress
from station_tools.mosquitto import Mosquitto
from station_tools.simulator.__main__ import main as simulator_main
from station_tools.simulator.control import send_control, simulator_status, wait_simulator_online


def simulator_process(
    broker: Mosquitto, root: str, instance: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "station_tools.simulator",
                "--broker",
                broker.url,
                "--layout",
                "1x2",
                "--root",
                root,
                "--instance",
                instance,
                "--initial-energy",
                "1000",
                "--speedup",
                "3600",
                "--meter-interval",
                "0.05",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def station(*args: str) -> tuple[int, str, str]:
    """Run the ``station`` command line as a user would, in its own process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "station_tools.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def stop_process(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    for _ in range(200):
        if process.poll() is not None:
            return process.returncode
        await asyncio.sleep(0.05)
    process.kill()
    raise AssertionError("the simulator did not stop on SIGTERM")


async def test_control_topics_drive_a_simulator_process(
    own_mosquitto: Mosquitto, record, root, tmp_path
):
    broker = BrokerAddress.parse(own_mosquitto.url)
    topics = ZigbeeChannels.for_charger("c1", root)
    pile = topics.pile_state.topic(pile="c1-p01")
    process = simulator_process(own_mosquitto, root, "run-1", tmp_path / "sim.log")
    try:
        assert await wait_simulator_online(broker, "run-1", 20), (tmp_path / "sim.log").read_text()
        status = await simulator_status(broker)
        assert status == SimulatorStatus(state="online", instance="run-1", layout="1x2", root=root)

        async with record(
            pile, topics.pile_state.topic(pile="c1-p02"), broker=own_mosquitto
        ) as rec:
            await send_control(broker, "c1-p01", PileControl(command=PileControlCommand.PLUG))
            await rec.next(pile, lambda s: s["gun"] == "plugged")

            for garbage in (b"{}", b"nonsense", b'{"command": "swipe"}', b'{"command": "dance"}'):
                await rec.publish(channels.PILE_CONTROL.topic(pile="c1-p01"), garbage)
            await rec.publish(channels.PILE_CONTROL.topic(pile="c7-p01"), b'{"command": "plug"}')

            swipe = PileControl(command=PileControlCommand.SWIPE, card_uid="CARD-7")
            await send_control(broker, "c1-p01", swipe)
            swiped = await rec.next(pile, lambda s: s.get("action") == "card_swipe")
            assert swiped["card_uid"] == "CARD-7" and swiped["gun"] == "plugged"

            start = ChargeCommand(charge="start", session_id="s-proc", max_current=32)
            await rec.publish(topics.pile_set.topic(pile="c1-p01"), encode(start))
            await rec.next(pile, lambda s: s["charging"] and s["energy"] > 1000.5)

            fault = PileControl(command=PileControlCommand.FAULT, error_code="OverCurrentFailure")
            await send_control(broker, "c1-p01", fault)
            faulted = await rec.next(pile, lambda s: s["error_code"] == "OverCurrentFailure")
            assert faulted["charging"] is False

            code, out, err = await station(
                "pile", "plug", "c1-p02", "--broker", own_mosquitto.url, "--watch", "0"
            )
            assert code == 0, err
            assert out == "c1-p02: plug\n"
            await rec.next(topics.pile_state.topic(pile="c1-p02"), lambda s: s["gun"] == "plugged")

            swiping = asyncio.create_task(
                station(
                    "pile",
                    "swipe",
                    "c1-p02",
                    "DEMO-0001",
                    "--broker",
                    own_mosquitto.url,
                    "--watch",
                    "1.5",
                )
            )
            swiped = await rec.next(
                topics.pile_state.topic(pile="c1-p02"), lambda s: "action" in s, timeout=15
            )
            assert swiped["card_uid"] == "DEMO-0001"
            screen = DisplayCommand(display=Display(lines=["Card accepted", "Charging"]))
            await rec.publish(topics.pile_set.topic(pile="c1-p02"), encode(screen))
            code, out, err = await swiping
            assert code == 0, err
            assert "c1-p02 screen: Card accepted | Charging" in out, "the CLI shows the display"

            code, _, err = await station(
                "pile", "plug", "c3-p01", "--broker", own_mosquitto.url, "--watch", "0"
            )
            assert code == 1
            assert "not a pile of the simulated 1x2 station" in err

        assert await stop_process(process) == 0
        async with record(topics.bridge_state.topic(), broker=own_mosquitto) as late:
            assert await late.next(topics.bridge_state.topic()) == {"state": "offline"}
        status = await simulator_status(broker)
        assert status is not None and status.state == "offline"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_killing_the_process_leaves_the_last_wills(
    own_mosquitto: Mosquitto, record, root, tmp_path
):
    broker = BrokerAddress.parse(own_mosquitto.url)
    topics = ZigbeeChannels.for_charger("c1", root)
    process = simulator_process(own_mosquitto, root, "run-2", tmp_path / "sim.log")
    try:
        assert await wait_simulator_online(broker, "run-2", 20)
        process.kill()
        process.wait()
        async with record(topics.bridge_state.topic(), broker=own_mosquitto) as late:
            assert await late.next(topics.bridge_state.topic()) == {"state": "offline"}
        status = await simulator_status(broker)
        assert status is not None and status.state == "offline"
        code, _, err = await station(
            "pile", "plug", "c1-p01", "--broker", own_mosquitto.url, "--watch", "0"
        )
        assert code == 1 and "no simulator is running" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_station_pile_join_pairs_a_new_pile_only_while_joining_is_open(
    own_mosquitto: Mosquitto, record, root, tmp_path
):
    broker = BrokerAddress.parse(own_mosquitto.url)
    topics = ZigbeeChannels.for_charger("c1", root)
    process = simulator_process(own_mosquitto, root, "run-3", tmp_path / "sim.log")
    try:
        assert await wait_simulator_online(broker, "run-3", 20), (tmp_path / "sim.log").read_text()
        async with record(f"{root}/#", broker=own_mosquitto) as rec:
            code, out, err = await station("pile", "join", "c1", "--broker", own_mosquitto.url)
            assert (code, out) == (1, "")
            assert "joining is closed on c1; open it from the console" in err
            code, _, err = await station("pile", "join", "c4", "--broker", own_mosquitto.url)
            assert code == 1 and "c4 is not a charger of the simulated 1x2 station" in err
            assert rec.on(topics.bridge_event.topic()) == []

            permit = PermitJoinRequest(time=60, transaction="open-1")
            await rec.publish(
                topics.permit_join.request.topic(), topics.permit_join.request.encode(permit)
            )
            await rec.next(topics.permit_join.response.topic(), lambda r: r["status"] == "ok")

            code, out, err = await station("pile", "join", "c1", "--broker", own_mosquitto.url)
            assert code == 0, err
            address = out.strip()
            assert out == f"{address}\n" and address.startswith("0x") and len(address) == 18
            interviewed = BridgeEvent.model_validate(
                await rec.next(
                    topics.bridge_event.topic(), lambda e: e["data"].get("status") == "successful"
                )
            )
            assert interviewed.data.ieee_address == address
            assert interviewed.data.friendly_name == address

            name = DeviceRenameRequest(from_=address, to="c1-p03", transaction="name-1")
            await rec.publish(
                topics.device_rename.request.topic(), topics.device_rename.request.encode(name)
            )
            renamed = await rec.next(topics.device_rename.response.topic())
            assert renamed["status"] == "ok" and renamed["transaction"] == "name-1"

            code, out, err = await station(
                "pile", "plug", "c1-p03", "--broker", own_mosquitto.url, "--watch", "0"
            )
            assert code == 0 and out == "c1-p03: plug\n"
            assert "sent anyway" in err
            await rec.next(topics.pile_state.topic(pile="c1-p03"), lambda s: s["gun"] == "plugged")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layout", "4by12"], "NxM"),
        (["--broker", "http://x:1"], "mqtt://HOST:PORT"),
        (["--speedup", "0"], "positive"),
        (["--speedup", "fast"], "not a number"),
    ],
)
def test_the_simulator_refuses_bad_options_with_exit_code_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        simulator_main(args)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
