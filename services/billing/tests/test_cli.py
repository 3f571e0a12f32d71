"""``station-billing price``: the offline pricing CLI, the same engine as the service."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from station_billing.cli import main

CLI = str(Path(sys.executable).with_name("station-billing"))

TARIFF = {
    "country_code": "NL",
    "party_id": "TNM",
    "id": "12",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}],
            "restrictions": {"start_time": "07:00", "end_time": "19:00"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.15, "vat": 10.0, "step_size": 1}]},
        {
            "price_components": [
                {"type": "PARKING_TIME", "price": 2.00, "vat": 20.0, "step_size": 900}
            ]
        },
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def cdr(start: str, kwh: float, parked_hours: float = 0.0) -> dict[str, Any]:
    """A CDR whose one charging period starts at ``start`` (UTC), as an OCPI party sends it."""
    periods: list[dict[str, Any]] = [
        {
            "start_date_time": f"{start}Z",
            "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": 1}],
        }
    ]
    end_hour = int(start[11:13]) + 1
    if parked_hours:
        periods.append(
            {
                "start_date_time": f"{start[:11]}{end_hour:02d}{start[13:]}Z",
                "dimensions": [{"type": "PARKING_TIME", "volume": parked_hours}],
            }
        )
    return {
        "id": f"cdr-{start}",
        "start_date_time": f"{start}Z",
        "end_date_time": f"{start[:11]}{end_hour + 1:02d}{start[13:]}Z",
        "charging_periods": periods,
        "total_energy": kwh,
    }


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def price(capsys: Any, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(["price", *args])
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_the_console_script_prints_the_cdr_totals_as_ocpi_json(tmp_path: Path) -> None:
    tariff = write(tmp_path / "tariff.json", TARIFF)
    one = write(tmp_path / "cdr.json", cdr("2026-03-02T09:00:00", 20, parked_hours=0.5))
    done = run("price", "--tariff", str(tariff), "--cdr", str(one), "--tz", "Europe/Amsterdam")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout) == {
        "id": "cdr-2026-03-02T09:00:00",
        "currency": "EUR",
        "total_cost": {"excl_vat": "6.00", "incl_vat": "6.70"},
        "total_energy_cost": {"excl_vat": "5.00", "incl_vat": "5.50"},
        "total_time_cost": {"excl_vat": "0.00", "incl_vat": "0.00"},
        "total_parking_cost": {"excl_vat": "1.00", "incl_vat": "1.20"},
        "total_fixed_cost": {"excl_vat": "0.00", "incl_vat": "0.00"},
        "total_energy": "20",
        "total_time": "2",
        "total_parking_time": "0.5",
    }


def test_the_time_zone_comes_from_tz_or_else_the_station_setting(
    tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    tariff = write(tmp_path / "tariff.json", TARIFF)
    evening = write(tmp_path / "cdr.json", cdr("2026-03-02T17:30:00", 10))  # 18:30 / 01:30
    status, out, _ = price(
        capsys, "--tariff", str(tariff), "--cdr", str(evening), "--tz", "Europe/Amsterdam"
    )
    assert status == 0 and json.loads(out)["total_energy_cost"]["excl_vat"] == "2.50"
    monkeypatch.setenv("STATION_BILLING_TIME_ZONE", "Asia/Shanghai")
    status, out, _ = price(capsys, "--tariff", str(tariff), "--cdr", str(evening))
    assert status == 0 and json.loads(out)["total_energy_cost"]["excl_vat"] == "1.50"


def test_a_month_of_cdrs_is_priced_a_line_each_and_a_bad_line_is_named(
    tmp_path: Path, capsys: Any
) -> None:
    tariff = write(tmp_path / "tariff.json", TARIFF)
    lines = [
        json.dumps(cdr("2026-03-02T09:00:00", 20)),
        json.dumps({**cdr("2026-03-02T10:00:00", 5), "charging_periods": []}),
        "",
        "{not json",
        json.dumps(cdr("2026-03-02T20:00:00", 10)),
    ]
    batch = tmp_path / "month.jsonl"
    batch.write_text("\n".join(lines) + "\n")
    status, out, err = price(
        capsys, "--tariff", str(tariff), "--cdrs", str(batch), "--tz", "Europe/Amsterdam"
    )
    results = [json.loads(line) for line in out.splitlines()]
    assert status == 2
    assert [r.get("line") for r in results] == [None, 2, 4, None]
    assert results[0]["total_cost"] == {"excl_vat": "5.00", "incl_vat": "5.50"}
    assert results[3]["total_cost"] == {"excl_vat": "1.50", "incl_vat": "1.65"}
    assert "charging_periods" in results[1]["error"] and "month.jsonl:2" in results[1]["error"]
    assert "not JSON" in results[2]["error"]
    assert err.count("\n") == 2 and "month.jsonl:2" in err and "month.jsonl:4" in err


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"currency": "euro"}, "currency"),
        (
            {"elements": [{"price_components": [{"type": "ENERGY", "price": -1, "step_size": 0}]}]},
            "elements[0].price_components[0].price",
        ),
        (
            {
                "elements": [
                    {
                        "price_components": [{"type": "ENERGY", "price": 1, "step_size": 0}],
                        "restrictions": {"min_kwh": 5, "max_kwh": 1},
                    }
                ]
            },
            "elements[0].restrictions.max_kwh",
        ),
    ],
)
def test_a_bad_tariff_is_exit_2_with_one_line_naming_the_field(
    tmp_path: Path, capsys: Any, change: dict[str, Any], names: str
) -> None:
    tariff = write(tmp_path / "tariff.json", {**TARIFF, **change})
    one = write(tmp_path / "cdr.json", cdr("2026-03-02T09:00:00", 20))
    status, out, err = price(capsys, "--tariff", str(tariff), "--cdr", str(one))
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and names in err and "tariff.json" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cdr", "{cdr}", "--tz", "Mars/Olympus"], "Mars/Olympus"),
        (["--cdr", "{missing}"], "cannot read"),
        (["--cdr", "{junk}"], "not JSON"),
        (["--cdr", "{late}"], "end_date_time"),
        (["--cdr", "{cdr}", "--cdrs", "{cdr}"], "not allowed with"),
        ([], "one of the arguments --cdr --cdrs is required"),
    ],
)
def test_bad_input_is_exit_2_with_one_line_saying_what_is_wrong(
    tmp_path: Path, capsys: Any, args: list[str], says: str
) -> None:
    files = {
        "cdr": write(tmp_path / "cdr.json", cdr("2026-03-02T09:00:00", 20)),
        "missing": tmp_path / "nowhere.json",
        "junk": tmp_path / "junk.json",
        "late": write(
            tmp_path / "late.json",
            {**cdr("2026-03-02T09:00:00", 1), "end_date_time": "2026-03-01T00:00:00Z"},
        ),
    }
    files["junk"].write_text("{")
    tariff = write(tmp_path / "tariff.json", TARIFF)
    argv = [
        "--tariff",
        str(tariff),
        *(a.format(**{k: str(v) for k, v in files.items()}) for a in args),
    ]
    status, out, err = price(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and says in err, err


async def test_the_cli_and_the_service_give_the_same_totals_for_the_same_session(
    billing: Any, collector: Any, new_pile: Any, tmp_path: Path
) -> None:
    """A session across a band boundary, with parking, priced by the service and then the CLI."""
    pile, session = new_pile(), str(uuid.uuid4())
    tou = {
        "currency": "CNY",
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": "1.0715", "vat": "13", "step_size": 10}
                ],
                "restrictions": {"start_time": "14:30", "end_time": "22:00"},
            },
            {
                "price_components": [
                    {"type": "ENERGY", "price": "0.6235", "vat": "13", "step_size": 10}
                ]
            },
            {
                "price_components": [
                    {"type": "PARKING_TIME", "price": "5.00", "vat": "6", "step_size": 300}
                ]
            },
        ],
    }
    await billing.http.put("/api/v1/tariffs/tou-cli", content=json.dumps(tou))
    await billing.http.post(
        "/api/v1/tariff-assignments", json={"tariff_id": "tou-cli", "pile_id": pile}
    )
    billing.clock.advance(minutes=7, seconds=13)  # 14:07:13 in Shanghai
    await collector.open(session, pile, "CARD-CLI", meter_start="1000.001")
    steps = ((11, "1003.337", True), (29, "1011.829", True), (8, "1013.2", False))
    for seen, (minutes, energy, charging) in enumerate(steps, start=1):
        billing.clock.advance(minutes=minutes, seconds=17)
        await collector.reading(pile, session, energy=energy, charging=charging)
        await billing.readings_seen(seen)
    billing.clock.advance(minutes=9, seconds=41)
    await collector.checkout(session, pile, meter_stop="1013.2")

    record = (await billing.http.get(f"/api/v1/sessions/{session}/cdr")).json()
    assert len(record["charging_periods"]) == 3  # before 14:30, after, parking
    tariff = write(tmp_path / "tariff.json", record["tariffs"][0])
    one = write(tmp_path / "cdr.json", record)
    done = await asyncio.to_thread(
        run, "price", "--tariff", str(tariff), "--cdr", str(one), "--tz", "Asia/Shanghai"
    )
    assert done.returncode == 0, done.stderr
    offline = json.loads(done.stdout)
    keys = [k for k in offline if k.startswith("total_") or k == "currency"]
    assert {k: offline[k] for k in keys} == {k: record[k] for k in keys}
    stored = await billing.session(session)
    assert offline["total_cost"] == stored["total_cost"]
