"""The outbox contract: a record is queued in its own transaction, once, and reads back exact."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from station_protocol import channels
from station_protocol.central import CentralPaths, RecordBatch
from station_protocol.messages import ServiceFaultReport, StopReason
from station_protocol.ocpi import Price
from station_protocol.records import ChargingRecord, record_json
from station_runtime.migrations import make_engine
from station_runtime.outbox import OUTBOX_METADATA, billing_outbox, write_outbox_row

STOPPED = datetime(2026, 11, 30, 14, 30, tzinfo=timezone(timedelta(hours=8)))


def record(record_id: str = "s-1", cost: str = "14.81") -> ChargingRecord:
    return ChargingRecord(
        record_id=record_id,
        station_id="station-1",
        session_id=record_id,
        pile_id="c1-p01",
        card_uid="CARD-1",
        started_at=STOPPED - timedelta(minutes=40),
        stopped_at=STOPPED,
        stop_reason=StopReason.LOCAL,
        meter_start=Decimal("100.25"),
        meter_stop=Decimal("112.595"),
        total_energy=Decimal("12.345"),
        total_cost=Price(excl_vat=Decimal(cost), incl_vat=Decimal(cost)),
        currency="CNY",
        tariff_id="default",
    )


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'billing.db'}")
    OUTBOX_METADATA.create_all(engine)
    return engine


def test_the_row_is_written_and_rolled_back_with_the_records_transaction(engine: Engine) -> None:
    with engine.connect() as connection, connection.begin() as transaction:
        write_outbox_row(connection, record("rolled-back"))
        transaction.rollback()
    with engine.begin() as connection:
        write_outbox_row(connection, record("kept"), stored_at=STOPPED)

    with engine.connect() as connection:
        rows = connection.execute(select(billing_outbox)).mappings().all()
        raw = connection.execute(text("SELECT stored_at FROM billing_outbox")).scalar_one()

    assert [row["record_id"] for row in rows] == ["kept"]
    [row] = rows
    assert row["stored_at"] == STOPPED and row["stored_at"].tzinfo is not None
    assert raw == "2026-11-30 06:30:00.000000", "SQLite keeps naive UTC"
    assert (row["sent_at"], row["attempts"], row["last_error"], row["refused_at"]) == (
        None,
        0,
        None,
        None,
    )
    assert ChargingRecord.model_validate_json(row["payload"]) == record("kept")


def test_a_record_is_queued_once(engine: Engine) -> None:
    with engine.begin() as connection:
        write_outbox_row(connection, record())
    with pytest.raises(IntegrityError), engine.begin() as connection:
        write_outbox_row(connection, record())


def test_money_travels_as_exact_strings_and_unknown_fields_are_kept() -> None:
    payload = record_json(record())
    newer = ChargingRecord.model_validate_json(payload[:-1] + ',"loyalty_points":"12"}')

    assert '"total_cost":{"excl_vat":"14.81","incl_vat":"14.81"}' in payload
    assert '"total_energy":"12.345"' in payload
    assert "total_time" not in payload, "absent CDR parts are left out, not null"
    assert newer.model_extra == {"loyalty_points": "12"}
    assert '"loyalty_points":"12"' in record_json(newer)
    assert RecordBatch.model_validate_json('{"records":[' + payload + "]}").records == [record()]


def test_service_faults_have_a_topic_and_a_report_of_their_own() -> None:
    topic = channels.SERVICE_FAULT.topic(
        service="sync", source="central", code="central_sync_backlog"
    )
    report = ServiceFaultReport(
        service="sync",
        source="central",
        code="central_sync_backlog",
        active=True,
        since=STOPPED,
        detected_at=STOPPED + timedelta(minutes=5),
    )

    assert topic == "station/v1/services/sync/faults/central/central_sync_backlog"
    assert channels.SERVICE_FAULT.filter() == "station/v1/services/+/faults/+/+"
    assert channels.SERVICE_FAULT.filter(service="sync") == "station/v1/services/sync/faults/+/+"
    assert ServiceFaultReport.model_validate_json(report.model_dump_json()) == report
    assert CentralPaths.records_batch("station-1") == "/api/v1/stations/station-1/records:batch"
