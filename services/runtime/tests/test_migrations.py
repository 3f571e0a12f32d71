"""Every service's database URL reaches the driver intact, password included."""

from __future__ import annotations

from pathlib import Path

from station_runtime.migrations import make_engine


def test_a_postgresql_url_keeps_its_password_and_gets_the_psycopg_driver() -> None:
    engine = make_engine("postgresql://billing:s3cret-pw@db.station:5432/billing")
    assert engine.url.password == "s3cret-pw"
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.url.database == "billing"


def test_a_sqlite_url_gets_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "billing.db"
    engine = make_engine(f"sqlite:///{target}")
    with engine.connect():
        pass
    assert target.exists()
