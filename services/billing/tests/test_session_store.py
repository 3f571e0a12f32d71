"""The session store on SQLite: money and readings come back exactly, times come back aware."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from station_billing.charging_record import charging_record
from station_billing.main import SPEC
from station_billing.receipts import Costs, build_receipt
from station_billing.session_closing import Closing
from station_billing.session_store import CompleteOutcome, OpenOutcome, SessionStore
from station_billing.tariff_store import StoredTariff
from station_protocol.messages import SessionOpenRequest, StopReason
from station_protocol.ocpi import (
    Price,
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
)
from station_protocol.records import ChargingRecord
from station_runtime.migrations import make_engine, migrate

# 20 significant digits: a binary float keeps about 16, so these would not survive one
START = Decimal("1234567.8901234567891")
STOP = Decimal("1234579.0000000000001")
BEIJING = timezone(timedelta(hours=8))


def store_at(path: Path) -> SessionStore:
    engine = make_engine(f"sqlite:///{path}")
    assert SPEC.migrations is not None
    migrate(engine, SPEC.migrations, SPEC.version_table)
    return SessionStore(engine)


def tariff() -> StoredTariff:
    return StoredTariff(default(), None)


def default() -> Tariff:
    return Tariff(
        id="default",
        currency="CNY",
        elements=[
            TariffElement(
                price_components=[
                    PriceComponent(type=TariffDimensionType.ENERGY, price=Decimal("1.2"))
                ]
            )
        ],
        last_updated=datetime(2026, 11, 1, tzinfo=UTC),
    )


def test_decimals_and_times_round_trip_exactly_on_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "billing.db"
    store = store_at(db)
    started = datetime(2026, 11, 30, 14, 0, 0, 123456, tzinfo=BEIJING)
    request = SessionOpenRequest(
        session_id="s-1", pile_id="c1-p01", card_uid="C", meter_start=START
    )
    assert store.open(request, started, tariff()).outcome is OpenOutcome.OPENED

    energy = STOP - START
    cost = Price(excl_vat=Decimal("13.33"), incl_vat=Decimal("13.33"))
    stopped = started + timedelta(hours=1)
    session = store.get("s-1")
    assert session is not None
    record = charging_record(
        session,
        station_id="station-1",
        stopped_at=stopped,
        stop_reason=StopReason.LOCAL,
        meter_stop=STOP,
        total_energy=energy,
        total_cost=cost,
        cdr={},
    )
    closing = Closing(
        session_id="s-1",
        stopped_at=stopped,
        stop_reason=StopReason.LOCAL,
        meter_stop=STOP,
        total_energy=energy,
        total_cost=cost,
        receipt=build_receipt(
            session_id="s-1",
            pile_id="c1-p01",
            card_uid="C",
            started_at=started,
            stopped_at=stopped,
            total_energy=energy,
            costs=Costs(total=cost, energy=cost.excl_vat),
            currency="CNY",
            station_id="station-1",
        ),
        record=record,
    )
    assert store.complete(closing).outcome is CompleteOutcome.COMPLETED
    assert store.complete(closing).outcome is CompleteOutcome.ALREADY_COMPLETED
    with sqlite3.connect(db) as raw:
        queued = raw.execute("SELECT record_id, payload FROM billing_outbox").fetchall()
    assert [row[0] for row in queued] == ["s-1"]  # stored once, queued once
    assert ChargingRecord.model_validate_json(queued[0][1]) == record

    reread = store_at(db).get("s-1")  # a fresh engine: nothing cached
    assert reread is not None
    assert reread.meter_start == START
    assert reread.meter_stop == STOP
    assert reread.total_energy == Decimal("11.1098765432110")
    assert reread.cost_excl_vat == Decimal("13.33")
    assert reread.started_at == started and reread.started_at.tzinfo is not None
    assert reread.stopped_at == stopped
    with sqlite3.connect(db) as raw:
        stored = raw.execute(
            "SELECT meter_start, typeof(meter_start), cost_incl_vat FROM billing_sessions"
        ).fetchone()
    assert stored == ("1234567.8901234567891", "text", "13.33")


def test_the_database_refuses_a_second_active_session_on_a_pile(tmp_path: Path) -> None:
    store = store_at(tmp_path / "billing.db")
    now = datetime(2026, 11, 30, tzinfo=UTC)

    def request(session_id: str) -> SessionOpenRequest:
        return SessionOpenRequest(
            session_id=session_id, pile_id="c1-p01", card_uid="C", meter_start=Decimal(0)
        )

    store.open(request("a"), now, tariff())
    # as if another replica had checked before "a" was inserted: the index still says no
    with sqlite3.connect(tmp_path / "billing.db") as raw:
        busy = raw.execute(
            "SELECT count(*) FROM billing_sessions WHERE pile_id = 'c1-p01' AND status = 'active'"
        ).fetchone()
        assert busy == (1,)
        try:
            raw.execute(
                "INSERT INTO billing_sessions (id, pile_id, card_uid, status, started_at, "
                "meter_start, currency, tariff_id, tariff) "
                "VALUES ('b', 'c1-p01', 'C', 'active', '2026-11-30', '0', 'CNY', 'd', '{}')"
            )
        except sqlite3.IntegrityError:
            refused = True
        else:
            refused = False
    assert refused
    assert store.open(request("b"), now, tariff()).outcome is OpenOutcome.PILE_BUSY
