"""``station`` argument parsing: a bad value is one clear line and exit code 2."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from station_protocol.ids import Layout
from station_runtime.bus import BrokerAddress
from station_tools.cli import build_parser, main
from station_tools.launcher import StationPlan
from station_tools.station_file import ServiceEntry, StationFile, StationState


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    captured = capsys.readouterr()
    code = exit_.value.code
    assert isinstance(code, int)
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up", "--simulate", "4by12"], "argument --simulate: layout must be NxM"),
        (["up", "--simulate", "0x12"], "layout must be NxM"),
        (["up", "--simulate", "4x100"], "layout must be NxM"),
        (["up", "--broker", "http://host:1883"], "broker must be mqtt://HOST:PORT"),
        (["up", "--t1", "0"], "argument --t1: seconds must be more than 0"),
        (["up", "--t2", "soon"], "not a number of seconds"),
        (["up", "--speedup", "-3"], "speedup must be a positive number"),
        (["up", "--port-offset", "-1"], "port offset must be 0..50000"),
        (["up", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["pile", "plug", "pile-1"], "a pile is c<i>-p<jj>"),
        (["pile", "swipe", "c1-p01"], "the following arguments are required: CARD"),
        (["pile", "swipe", "c1-p01", "CARD\u00e9"], "printable ASCII"),
        (["pile", "fault", "c1-p01", "Meltdown"], "unknown error code 'Meltdown'"),
        (["pile", "launch", "c1-p01"], "invalid choice: 'launch'"),
        (["pile", "join", "c1-p01"], "a charger is c<i>"),
        (["pile", "join"], "the following arguments are required: CHARGER"),
        (["pile", "join", "c1", "--watch", "1"], "unrecognized arguments: --watch"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err


def test_up_defaults_are_the_reference_station() -> None:
    args = build_parser().parse_args(["up"])
    assert args.simulate == Layout(4, 12)
    assert (args.t1, args.t2, args.speedup) == (1.0, 60.0, Decimal(1))
    assert args.data_dir == Path(".station")
    assert args.broker is None and not args.no_simulator and not args.no_services


def test_up_options_are_parsed_into_their_types() -> None:
    args = build_parser().parse_args(
        [
            "up",
            "--simulate",
            "2x3",
            "--broker",
            "mqtt://10.0.0.5:1884",
            "--t1",
            "0.5",
            "--speedup",
            "60",
            "--no-simulator",
            "--data-dir",
            "/tmp/s",
        ]
    )
    assert args.simulate == Layout(2, 3)
    assert args.broker == BrokerAddress("10.0.0.5", 1884)
    assert args.t1 == 0.5 and args.speedup == Decimal(60)
    assert args.no_simulator and args.data_dir == Path("/tmp/s")


def test_the_plan_gives_every_service_its_port_and_variables(tmp_path: Path) -> None:
    plan = StationPlan(data_dir=tmp_path, layout=Layout(2, 12), t1=0.5)
    broker = BrokerAddress("127.0.0.1", 1999)
    processes = {p.name: p for p in plan.rig(broker).plan()}
    assert set(processes) == {
        "verification",
        "billing",
        "faults",
        "console",
        "central",
        "sync",
        "collector-c1",
        "collector-c2",
    }
    verification = processes["verification"]
    assert verification.module == "station_verification"
    assert verification.env["STATION_VERIFICATION_PORT"] == "8101"
    assert verification.env["STATION_VERIFICATION_BROKER"] == "mqtt://127.0.0.1:1999"
    assert processes["billing"].env["STATION_BILLING_PORT"] == "8102"
    collector = processes["collector-c2"]
    assert collector.module == "station_collector"
    assert collector.env["STATION_COLLECTOR_CHARGER"] == "c2"
    assert collector.env["STATION_COLLECTOR_PILES"] == "12"
    assert collector.env["STATION_COLLECTOR_PORT"] == "8122"
    assert collector.env["STATION_COLLECTOR_T1"] == "0.5"
    assert collector.health_url == "http://127.0.0.1:8122/ready"
    assert processes["faults"].env["STATION_FAULTS_PORT"] == "8103"
    assert processes["faults"].env["STATION_FAULTS_LAYOUT"] == "2x12"
    assert processes["sync"].env["STATION_SYNC_PORT"] == "8104"
    assert processes["sync"].env["STATION_SYNC_CENTRAL_URL"] == "http://127.0.0.1:8110"
    assert processes["central"].env["STATION_CENTRAL_PORT"] == "8110"
    console = processes["console"]
    assert console.env["STATION_CONSOLE_PORT"] == "8100"  # the board's
    assert console.env["STATION_CONSOLE_BILLING_URL"] == "http://127.0.0.1:8102"
    assert console.health_url == "http://127.0.0.1:8100/ready"
    given = {p.name: p for p in plan.rig(broker, "an-admin-token-0123456789").plan()}
    assert given["central"].env["STATION_CENTRAL_ADMIN_TOKEN"] == "an-admin-token-0123456789"
    shifted = StationPlan(data_dir=tmp_path, layout=Layout(1, 1), port_offset=1000)
    assert shifted.ports() == {
        "verification": 9101,
        "billing": 9102,
        "faults": 9103,
        "console": 9100,
        "central": 9110,
        "sync": 9104,
        "collector c1": 9121,
    }


def test_pile_commands_need_a_running_station(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["pile", "plug", "c1-p01", "--data-dir", str(tmp_path)], capsys)
    assert code == 1
    assert "no running station" in err and "--broker" in err


def test_down_without_a_station_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["down", "--data-dir", str(tmp_path)], capsys)
    assert code == 1
    assert "no station is running" in err


def test_a_stale_station_file_is_not_a_running_station(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = StationFile(
        state=StationState.RUNNING,
        broker="mqtt://127.0.0.1:1",
        launcher_pid=2**22 + 12345,
        started_at=datetime.now(UTC),
        t1=1.0,
        t2=60.0,
        speedup="1",
        services=[ServiceEntry(name="simulator", pid=2**22 + 12346, log="x.log")],
    )
    stale.write(tmp_path)
    assert StationFile.read(tmp_path) == stale
    assert not stale.launcher_alive()
    code, _, _ = run(["down", "--data-dir", str(tmp_path)], capsys)
    assert code == 1
    assert StationFile.read(tmp_path) is None


def test_pile_commands_say_when_the_broker_is_unreachable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from station_tools.ports import free_port

    url = f"mqtt://127.0.0.1:{free_port()}"
    code, _, err = run(["pile", "unplug", "c1-p01", "--broker", url], capsys)
    assert code == 1
    assert f"cannot reach the broker {url}" in err


def test_up_refuses_an_unreachable_broker_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from station_tools.ports import free_port

    url = f"mqtt://127.0.0.1:{free_port()}"
    code, _, err = run(["up", "--broker", url, "--data-dir", str(tmp_path / "st")], capsys)
    assert code == 1
    assert f"cannot reach the broker {url}" in err
    assert not (tmp_path / "st").exists()
