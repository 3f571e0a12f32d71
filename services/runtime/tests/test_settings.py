"""Settings read the environment once, into the types the code uses."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsConfigDict

from station_protocol.ids import Layout
from station_runtime.bus import BrokerAddress
from station_runtime.settings import DatabaseSettings, ServiceSettings, StationLayout, TimeZone


class Example(ServiceSettings, DatabaseSettings):
    model_config = SettingsConfigDict(env_prefix="STATION_EXAMPLE_", frozen=True, extra="ignore")

    layout: StationLayout | None = None
    time_zone: TimeZone = ZoneInfo("Asia/Shanghai")


def test_the_environment_is_parsed_once_into_typed_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATION_EXAMPLE_BROKER", "mqtt://broker.station:1884")
    monkeypatch.setenv("STATION_EXAMPLE_LAYOUT", "2x6")
    monkeypatch.setenv("STATION_EXAMPLE_TIME_ZONE", "Europe/Berlin")
    monkeypatch.setenv("STATION_EXAMPLE_DATABASE_URL", "postgresql://u:pw@db:5432/example")
    settings = Example()
    assert settings.broker == BrokerAddress("broker.station", 1884)
    assert settings.layout == Layout(2, 6)
    assert settings.time_zone == ZoneInfo("Europe/Berlin")
    url = settings.database("example")
    assert (url.host, url.password, url.database) == ("db", "pw", "example")
    assert settings.bus_options("example").broker == BrokerAddress("broker.station", 1884)


def test_an_empty_database_url_means_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = Example(database_url="", data_dir=tmp_path)
    url = settings.database("example")
    assert url.get_backend_name() == "sqlite"
    assert url.database == str(tmp_path / "example.db")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("broker", "http://nope"),
        ("layout", "4by12"),
        ("time_zone", "Mars/Olympus"),
        ("database_url", "not a url"),
    ],
)
def test_a_bad_value_is_refused_at_start(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        Example.model_validate({field: value})
