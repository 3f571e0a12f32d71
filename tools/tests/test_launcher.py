"""``station up`` as a person runs it: a real process tree, stopped by a signal or a death."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from station_protocol.channels import ZigbeeChannels
from station_protocol.ids import Layout
from station_runtime.bus import BrokerAddress
from station_tools.admin_token import ADMIN_TOKEN_ENV
from station_tools.demo_cards import DEMO_CARDS, seed_cards
from station_tools.launcher import Launcher, StationPlan
from station_tools.ports import port_in_use
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
    """A port offset at which every port of the station's services is free."""
    for _ in range(100):
        offset = random.randint(10_000, 40_000)
        plan = StationPlan(Path("unused"), Layout(layout_chargers, 1), port_offset=offset)
        if not any(port_in_use(port) for port in plan.ports().values()):
            return offset
    raise AssertionError("no free port offset")


async def announcement(launcher: subprocess.Popen[str], timeout: float = 120) -> list[str]:
    """The lines ``station up`` printed up to the end of its announcement (it keeps running)."""
    assert launcher.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Ctrl-C here"):
        line = await asyncio.wait_for(asyncio.to_thread(launcher.stdout.readline), timeout)
        if not line:
            raise AssertionError(f"station up stopped announcing: {lines}")
        lines.append(line.rstrip("\n"))
    return lines


def run_curl(line: str, cwd: Path) -> str:
    """Run a ``curl`` line of the announcement as a person pastes it into bash."""
    done = subprocess.run(
        ["bash", "-c", line.strip()], cwd=cwd, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, (line, done.stderr)
    return done.stdout


def test_the_announcement_shows_the_board_first_and_how_to_read_centrals_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    data_dir = tmp_path / "my station"
    plan = StationPlan(data_dir=data_dir, layout=Layout(1, 2), port_offset=7)
    out = io.StringIO()
    launcher = Launcher(plan, out=out)
    launcher.broker = BrokerAddress.parse("mqtt://127.0.0.1:1883")
    launcher.admin = plan.admin_token()
    launcher.processes = plan.rig(launcher.broker, launcher.admin.value).plan("token")
    launcher.announce()

    lines = out.getvalue().splitlines()
    assert lines[0] == "Board: http://127.0.0.1:8107/"
    assert lines[2].startswith("Station up: 1 charger x 2 piles (simulated)")
    token_file = data_dir.resolve() / "central" / "admin-token"
    assert f"Central's records (admin token in {token_file})" in lines
    auth = f"curl -sH \"Authorization: Bearer $(cat '{token_file}')\""
    central = "http://127.0.0.1:8117"
    assert f"  {auth} {central}/api/v1/stations" in lines
    assert f'  {auth} "{central}/api/v1/records?station_id=station-1"' in lines
    assert f'  {auth} -o records.csv "{central}/api/v1/records.csv?station_id=station-1"' in lines
    assert launcher.admin.value not in out.getvalue(), "the secret itself is never shown"


def test_without_services_there_is_no_board_and_no_central(tmp_path: Path) -> None:
    plan = StationPlan(data_dir=tmp_path, layout=Layout(1, 1), services=False)
    out = io.StringIO()
    launcher = Launcher(plan, out=out)
    launcher.broker = BrokerAddress.parse("mqtt://127.0.0.1:1883")
    launcher.announce()
    text = out.getvalue()
    assert text.startswith("Station up: 1 charger x 1 pile (simulated)")
    assert "Board:" not in text and "curl" not in text
    assert not (tmp_path / "central").exists()


async def test_station_up_starts_the_services_and_seeds_the_demo_cards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    data_dir = tmp_path / "station"
    offset = free_offset(1)
    args = ("--no-simulator", "--simulate", "1x2", "--t1", "0.5", "--port-offset", str(offset))
    launcher = station_up(data_dir, *args)
    try:
        station_file = await running(data_dir, launcher)
        services = {s.name: s for s in station_file.services}
        assert set(services) == {
            "mosquitto",
            "verification",
            "billing",
            "faults",
            "console",
            "central",
            "sync",
            "collector-c1",
        }
        assert services["verification"].url == f"http://127.0.0.1:{8101 + offset}"
        assert services["console"].url == f"http://127.0.0.1:{8100 + offset}"
        assert services["collector-c1"].port == 8121 + offset
        async with httpx.AsyncClient(timeout=5) as client:
            for name in ("verification", "billing", "faults", "sync", "collector-c1"):
                url = services[name].url
                assert (await client.get(f"{url}/health")).status_code == 200
                assert "station_bus_connected" in (await client.get(f"{url}/metrics")).text
            board = await client.get(f"{services['console'].url}/")
            assert board.status_code == 200 and "text/html" in board.headers["content-type"]
            api = f"{services['verification'].url}/api/v1"
            card = (await client.get(f"{api}/cards/DEMO-0001")).json()
        assert Decimal(card["balance"]) == Decimal("500.00")
        assert await asyncio.to_thread(seed_cards, api) == {
            c.uid: "already there" for c in DEMO_CARDS
        }

        lines = await announcement(launcher)
        assert lines[0] == f"Board: http://127.0.0.1:{8100 + offset}/"
        token_file = data_dir.resolve() / "central" / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        curls = [line for line in lines if line.lstrip().startswith("curl ")]
        assert len(curls) == 3, lines
        assert [s["station_id"] for s in json.loads(run_curl(curls[0], tmp_path))] == ["station-1"]
        assert json.loads(run_curl(curls[1], tmp_path)) == []
        run_curl(curls[2], tmp_path)
        assert (tmp_path / "records.csv").read_text().startswith("record_id,station_id,")

        launcher.send_signal(signal.SIGTERM)
        code, out, err = await exited(launcher, timeout=60)
        assert code == 0, err
        assert "Station stopped." in out
        assert f"http://127.0.0.1:{8101 + offset}/api/v1" in "\n".join(lines)
        assert "DEMO-0001" in "\n".join(lines) and "[created]" in "\n".join(lines)
        assert not any(pid_alive(pid) for pid in pids(station_file).values())
        assert (data_dir / "verification" / "verification.db").exists()

        # A restart reads the same token: yesterday's curl lines still work.
        launcher = station_up(data_dir, *args)
        await running(data_dir, launcher)
        again = await announcement(launcher)
        assert again[0] == lines[0]
        assert [line for line in again if line.lstrip().startswith("curl ")] == curls
        assert token_file.read_text().strip() == token
        assert json.loads(run_curl(curls[0], tmp_path))[0]["station_id"] == "station-1"
        launcher.send_signal(signal.SIGTERM)
        code, _, err = await exited(launcher, timeout=60)
        assert code == 0, err
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()


def started_by(data_dir: Path) -> list[str]:
    """Live processes tied to ``data_dir`` (in their command line, environment or open files):
    mosquitto, every service and the simulator are, through their config, data or log."""
    mark = str(data_dir.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            texts = [(entry / "cmdline").read_bytes(), (entry / "environ").read_bytes()]
            texts += [os.readlink(fd).encode() for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        if any(mark.encode() in text for text in texts):
            command = texts[0].replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name}: {command[:120]}")
    return found


async def first_service_started(data_dir: Path, launcher: subprocess.Popen[str]) -> None:
    for _ in range(1200):
        if (data_dir / "logs" / "verification.log").exists():
            return
        if launcher.poll() is not None:
            raise AssertionError(f"station up exited {launcher.returncode}")
        await asyncio.sleep(0.05)
    raise AssertionError("no service was started")


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["starting", "running"])
async def test_sigterm_at_any_moment_stops_every_part_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moment: str
) -> None:
    monkeypatch.delenv(ADMIN_TOKEN_ENV, raising=False)
    data_dir = tmp_path / "station"
    offset = free_offset(1)
    ports = StationPlan(data_dir, Layout(1, 1), port_offset=offset).ports().values()
    launcher = station_up(data_dir, "--simulate", "1x1", "--port-offset", str(offset))
    try:
        if moment == "starting":
            await first_service_started(data_dir, launcher)
        else:
            await running(data_dir, launcher)
        assert started_by(data_dir), "the station's processes are found by its data dir"
        launcher.send_signal(signal.SIGTERM)
        code, out, err = await exited(launcher, timeout=20)
        assert code == 0, err
        assert "Traceback" not in err and "Traceback" not in out, err
        assert "Station stopped." in out
        assert StationFile.read(data_dir) is None
        assert started_by(data_dir) == []
        assert not any(port_in_use(port) for port in ports)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
