"""``station up`` as a person runs it: a real process tree, stopped by a signal or a death."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx

from station_protocol.channels import ZigbeeChannels
from station_tools.demo_cards import DEMO_CARDS, seed_cards
from station_tools.launcher import port_in_use
from station_tools.station_file import StationFile, StationState, pid_alive


def station_up(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "station_tools.cli", "up", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def station(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "station_tools.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def running(data_dir: Path, launcher: subprocess.Popen[str]) -> StationFile:
    """The station file once the station says it runs (fails fast if the launcher died)."""
    for _ in range(1800):  # every service imports FastAPI and friends: slow on a busy machine
        station_file = StationFile.read(data_dir)
        if station_file is not None and station_file.state == StationState.RUNNING:
            return station_file
        if launcher.poll() is not None:
            out, err = launcher.communicate()
            raise AssertionError(f"station up exited {launcher.returncode}: {out}\n{err}")
        await asyncio.sleep(0.05)
    raise AssertionError("the station did not come up")


async def exited(launcher: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    for _ in range(int(timeout / 0.05)):
        if launcher.poll() is not None:
            out, err = launcher.communicate()
            return launcher.returncode, out, err
        await asyncio.sleep(0.05)
    launcher.kill()
    raise AssertionError("station up did not exit")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def pids(station_file: StationFile) -> dict[str, int]:
    return {s.name: s.pid for s in station_file.services if s.pid is not None}


async def test_station_up_runs_broker_and_simulator_until_station_down(tmp_path, record):
    data_dir = tmp_path / "station"
    launcher = station_up(data_dir, "--no-services", "--simulate", "1x2", "--speedup", "60")
    try:
        station_file = await running(data_dir, launcher)
        assert station_file.layout == "1x2"
        assert station_file.launcher_pid == launcher.pid
        broker_port = int(station_file.broker.rsplit(":", 1)[1])
        assert listening(broker_port)
        children = pids(station_file)
        assert set(children) == {"mosquitto", "simulator"}

        code, _, err = await station("up", "--data-dir", str(data_dir), "--no-services")
        assert code == 1 and "already runs" in err

        pile = ZigbeeChannels.for_charger("c1").pile_state.topic(pile="c1-p01")
        async with record(pile, broker=broker_port) as rec:
            code, out, err = await station(
                "pile", "plug", "c1-p01", "--data-dir", str(data_dir), "--watch", "0"
            )
            assert code == 0, err
            await rec.next(pile, lambda s: s["gun"] == "plugged")

        code, out, err = await station("down", "--data-dir", str(data_dir))
        assert code == 0, err
        code, out, err = await exited(launcher)
        assert code == 0, err
        assert station_file.broker in out
        assert "station pile swipe c1-p01 DEMO-0001" in out
        assert "Station stopped." in out
        assert StationFile.read(data_dir) is None
        assert not listening(broker_port)
        assert not any(pid_alive(pid) for pid in children.values())
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


async def test_ctrl_c_stops_the_station_with_exit_code_0(tmp_path):
    data_dir = tmp_path / "station"
    launcher = station_up(data_dir, "--no-services", "--simulate", "2x1")
    try:
        station_file = await running(data_dir, launcher)
        launcher.send_signal(signal.SIGINT)
        code, out, err = await exited(launcher)
        assert code == 0, err
        assert "Stopping the station" in out
        assert not any(pid_alive(pid) for pid in pids(station_file).values())
        assert StationFile.read(data_dir) is None
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


async def test_a_dying_part_stops_the_station_with_exit_code_1(tmp_path):
    data_dir = tmp_path / "station"
    launcher = station_up(data_dir, "--no-services", "--simulate", "1x1")
    try:
        station_file = await running(data_dir, launcher)
        children = pids(station_file)
        os.kill(children["simulator"], signal.SIGKILL)
        code, _, err = await exited(launcher)
        assert code == 1
        assert "simulator stopped with exit code -9" in err
        assert "simulator ready" in err, "the tail of the simulator's log is shown"
        assert not pid_alive(children["mosquitto"])
        assert StationFile.read(data_dir) is None
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def blocked_port() -> socket.socket:
    """A listening socket on a port the station could be moved onto with --port-offset."""
    while True:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        if 8101 <= sock.getsockname()[1] <= 8101 + 50000:
            sock.listen()
            return sock
        sock.close()


async def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    data_dir = tmp_path / "station"
    with blocked_port() as blocker:
        port = blocker.getsockname()[1]
        code, _, err = await station(
            "up", "--data-dir", str(data_dir), "--port-offset", str(port - 8101), "--no-simulator"
        )
    assert code == 1
    assert f"port {port} for verification is already in use" in err
    assert not (data_dir / "mosquitto").exists()


def free_offset(layout_chargers: int) -> int:
    """A port offset at which verification, billing and every collector port are free."""
    for _ in range(100):
        offset = random.randint(10_000, 40_000)
        ports = [8101 + offset, 8102 + offset]
        ports += [8120 + i + offset for i in range(1, layout_chargers + 1)]
        if not any(port_in_use(port) for port in ports):
            return offset
    raise AssertionError("no free port offset")


async def test_station_up_starts_the_services_and_seeds_the_demo_cards(tmp_path):
    data_dir = tmp_path / "station"
    offset = free_offset(1)
    launcher = station_up(
        data_dir,
        "--no-simulator",
        "--simulate",
        "1x2",
        "--t1",
        "0.5",
        "--port-offset",
        str(offset),
    )
    try:
        station_file = await running(data_dir, launcher)
        services = {s.name: s for s in station_file.services}
        assert set(services) == {
            "mosquitto",
            "verification",
            "billing",
            "faults",
            "central",
            "sync",
            "collector-c1",
        }
        assert services["verification"].url == f"http://127.0.0.1:{8101 + offset}"
        assert services["collector-c1"].port == 8121 + offset
        async with httpx.AsyncClient(timeout=5) as client:
            for name in ("verification", "billing", "faults", "sync", "collector-c1"):
                url = services[name].url
                assert (await client.get(f"{url}/health")).status_code == 200
                assert "station_bus_connected" in (await client.get(f"{url}/metrics")).text
            api = f"{services['verification'].url}/api/v1"
            card = (await client.get(f"{api}/cards/DEMO-0001")).json()
        assert Decimal(card["balance"]) == Decimal("500.00")
        assert await asyncio.to_thread(seed_cards, api) == {
            c.uid: "already there" for c in DEMO_CARDS
        }

        launcher.send_signal(signal.SIGTERM)
        code, out, err = await exited(launcher, timeout=60)
        assert code == 0, err
        assert f"http://127.0.0.1:{8101 + offset}/api/v1" in out
        assert "DEMO-0001" in out and "[created]" in out
        assert not any(pid_alive(pid) for pid in pids(station_file).values())
        assert (data_dir / "verification" / "verification.db").exists()
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
