"""``GET /api/v1/records.csv``: the records for the books, as a spreadsheet reads them safely."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from station_protocol.central import CentralPaths
from station_protocol.ocpi import Price
from station_tools.central import CentralApi, bearer
from station_tools.records import sample_record

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


async def export(
    central: CentralApi, token: str | None = None, **query: Any
) -> list[dict[str, str]]:
    """The export's rows as dicts by column (the header must come first)."""
    answer = await central.http.get(
        CentralPaths.RECORDS_CSV, params=query, headers=bearer(token or central.admin_token)
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "records.csv" in answer.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(answer.text, newline="")))


def ids(rows: list[dict[str, str]]) -> list[str]:
    return [row["record_id"] for row in rows]


async def test_the_export_takes_the_listings_filters(central: CentralApi) -> None:
    north, north_token = await central.register()
    south, south_token = await central.register()
    card = f"CARD-{north}"
    north_records = [
        sample_record(north, pile_id="c1-p01", card_uid=card, stopped_at=T0),
        sample_record(north, pile_id="c1-p02", card_uid=card, stopped_at=T0 + timedelta(hours=1)),
        sample_record(north, pile_id="c1-p01", stopped_at=T0 + timedelta(hours=2)),
    ]
    south_records = [sample_record(south, card_uid=card, stopped_at=T0 + timedelta(hours=3))]
    await central.outcomes(north, north_token, north_records)
    await central.outcomes(south, south_token, south_records)
    n0, n1, n2 = (r.record_id for r in north_records)
    (s0,) = (r.record_id for r in south_records)
    hour = (T0 + timedelta(hours=1)).isoformat()
    two = (T0 + timedelta(hours=2)).isoformat()

    assert ids(await export(central, station_id=north)) == [n0, n1, n2]
    assert ids(await export(central, station_id=north, pile_id="c1-p01")) == [n0, n2]
    assert ids(await export(central, card_uid=card)) == [n0, n1, s0]
    assert ids(await export(central, station_id=north, since=hour)) == [n1, n2]
    assert ids(await export(central, station_id=north, until=hour)) == [n0]
    assert ids(await export(central, card_uid=card, since=hour, until=two)) == [n1]
    assert await export(central, station_id="nobody-here") == []
    # The JSON listing takes ``until`` too, so that both answer the same period.
    listed = await central.records(station_id=north, since=hour, until=two)
    assert [row["record_id"] for row in listed] == [n1]


async def test_amounts_are_exact_and_times_keep_their_offset(central: CentralApi) -> None:
    station, token = await central.register()
    record = sample_record(
        station, stopped_at=datetime(2026, 11, 30, 16, 0, tzinfo=BEIJING), energy="12.300"
    ).model_copy(
        update={
            "total_cost": Price(excl_vat=Decimal("0.10"), incl_vat=Decimal("0.113")),
            "meter_start": Decimal("1E+1"),
        }
    )
    await central.outcomes(station, token, [record])

    [row] = await export(central, station_id=station)
    assert row["energy_kwh"] == "12.300"
    assert row["cost_excl_vat"] == "0.10"
    assert row["vat"] == "0.013"
    assert row["cost_incl_vat"] == "0.113"
    assert row["meter_start_kwh"] == "10", "never 1E+1, which a spreadsheet reads otherwise"
    assert row["currency"] == "CNY"
    assert row["tariff_id"] == "default"
    assert row["stopped_at"] == "2026-11-30T16:00:00+08:00"
    assert row["started_at"] == "2026-11-30T15:15:00+08:00"
    assert datetime.fromisoformat(row["received_at"]).tzinfo is not None
    assert row["card_uid"] == record.card_uid and row["pile_id"] == record.pile_id
    assert row["stop_reason"] == "local" and row["anomaly"] == ""


async def test_cells_a_spreadsheet_would_run_are_escaped(central_on_sqlite: CentralApi) -> None:
    """A card is printable ASCII; a tariff id is any text (tab and CR too)."""
    central = central_on_sqlite
    station, token = await central.register()
    cells = [
        ('=HYPERLINK("http://x","pay")', '\'=HYPERLINK("http://x","pay")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-5", "-5"),
        ("-1.25", "-1.25"),
        ("CARD=1", "CARD=1"),
    ]
    tariffs = [("\tTAB", "'\tTAB"), ("\rCR", "'\rCR"), ("=1+2", "'=1+2"), ("-", "'-")]
    records = [
        sample_record(station, card_uid=card, stopped_at=T0 + timedelta(minutes=i))
        for i, (card, _) in enumerate(cells)
    ]
    records += [
        sample_record(station, stopped_at=T0 + timedelta(hours=1, minutes=i)).model_copy(
            update={"tariff_id": tariff}
        )
        for i, (tariff, _) in enumerate(tariffs)
    ]
    await central.outcomes(station, token, records)

    rows = await export(central, station_id=station)
    assert [row["card_uid"] for row in rows[: len(cells)]] == [safe for _, safe in cells]
    assert [row["tariff_id"] for row in rows[len(cells) :]] == [safe for _, safe in tariffs]


async def test_only_the_admin_exports(central_on_sqlite: CentralApi) -> None:
    central = central_on_sqlite
    station, token = await central.register()
    await central.outcomes(station, token, [sample_record(station, stopped_at=T0)])
    nobody = await central.http.get(CentralPaths.RECORDS_CSV)
    stranger = await central.http.get(CentralPaths.RECORDS_CSV, headers=bearer("stn_unknown"))
    own = await central.http.get(
        CentralPaths.RECORDS_CSV, params={"station_id": station}, headers=bearer(token)
    )
    naive = await central.http.get(
        CentralPaths.RECORDS_CSV,
        params={"until": "2026-11-30T08:00:00"},
        headers=bearer(central.admin_token),
    )
    assert nobody.status_code == 401
    assert nobody.headers["www-authenticate"] == "Bearer"
    assert stranger.status_code == 401
    assert own.status_code == 403
    assert naive.status_code == 422


async def test_a_large_export_streams_every_record_once_in_order(
    central_paging: CentralApi,
) -> None:
    """Pages of 7; ties on ``stopped_at`` straddle the pages (the row id breaks them)."""
    central = central_paging
    station, token = await central.register()
    other, other_token = await central.register()
    records = [
        sample_record(station, stopped_at=T0 + timedelta(minutes=i // 5), energy=f"{i}.001")
        for i in range(103)
    ]
    for start in range(0, len(records), 50):
        await central.outcomes(station, token, records[start : start + 50])
    await central.outcomes(other, other_token, [sample_record(other, stopped_at=T0)])

    rows = await export(central, station_id=station)
    assert ids(rows) == [r.record_id for r in records]
    assert [row["energy_kwh"] for row in rows] == [f"{i}.001" for i in range(103)]
    assert len(await export(central)) == 104
    since = (T0 + timedelta(minutes=3)).isoformat()
    assert ids(await export(central, station_id=station, since=since)) == [
        r.record_id for r in records[15:]
    ]
