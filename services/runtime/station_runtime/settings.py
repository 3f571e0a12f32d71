"""Settings every service has; each service subclasses with its own env prefix.

Values are parsed once, here, into what the code uses: a :class:`BrokerAddress`, a SQLAlchemy
``URL``, a ``ZoneInfo``, a :class:`Layout`. Nothing downstream turns them back into text to
parse them again.
"""

from __future__ import annotations

import os
import socket
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, PlainSerializer, SecretStr, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy import URL
from sqlalchemy.engine import make_url

from station_protocol.ids import Layout, PileId
from station_protocol.plausibility import (
    DEFAULT_BURST,
    DEFAULT_RATED_POWER,
    MeterCredit,
    RatedPowers,
)
from station_runtime.bus import BrokerAddress, BusOptions

WEAK_PASSWORDS = ("changethis", "secret", "password")


def _broker(value: Any) -> BrokerAddress:
    return value if isinstance(value, BrokerAddress) else BrokerAddress.parse(str(value))


def _layout(value: Any) -> Layout:
    return value if isinstance(value, Layout) else Layout.parse(str(value))


def _zone(value: Any) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc


def _database_url(value: Any) -> URL:
    if isinstance(value, URL):
        return value
    try:
        return make_url(str(value))
    except Exception as exc:  # SQLAlchemy raises ArgumentError for a malformed URL
        raise ValueError(f"not a database URL: {value!r}") from exc


Broker = Annotated[BrokerAddress, NoDecode, BeforeValidator(_broker), PlainSerializer(str)]
"""``mqtt://host:port`` in the environment, a :class:`BrokerAddress` in the code."""
StationLayout = Annotated[Layout, NoDecode, BeforeValidator(_layout), PlainSerializer(str)]
"""``NxM`` in the environment (``4x12``), a :class:`Layout` in the code."""
TimeZone = Annotated[ZoneInfo, NoDecode, BeforeValidator(_zone), PlainSerializer(str)]
"""An IANA zone name in the environment (``Asia/Shanghai``), a ``ZoneInfo`` in the code."""
DatabaseUrl = Annotated[
    URL,
    NoDecode,
    BeforeValidator(_database_url),
    PlainSerializer(lambda url: url.render_as_string(hide_password=False)),
]
"""A SQLAlchemy URL (``sqlite:///...``, ``postgresql://...``), parsed once."""


class ServiceSettings(BaseSettings):
    """Common settings: where the broker is, where to listen, how to log.

    ``STATION_<SERVICE>_BROKER=mqtt://host:port`` and so on; see each service's subclass.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    broker: Broker = BrokerAddress("127.0.0.1", 1883)
    broker_username: str | None = None
    broker_password: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    log_level: str = "INFO"
    client_id: str = ""
    """Unique per replica; default ``<service>-<hostname>-<pid>``."""
    keepalive: int = Field(default=10, ge=1)
    secure: bool = False
    """Outside local development: broker credentials are required."""

    @model_validator(mode="after")
    def _require_credentials_when_secure(self) -> ServiceSettings:
        if self.secure and not (self.broker_username and self.broker_password):
            raise ValueError("secure mode needs broker_username and broker_password")
        password = self.broker_password
        if self.secure and password and password.get_secret_value() in WEAK_PASSWORDS:
            raise ValueError("refusing a default broker password in secure mode")
        return self

    def bus_options(
        self,
        service: str,
        *,
        charger: str | None = None,
        status_topic: str | None = None,
        session_expiry: int = 0,
    ) -> BusOptions:
        client_id = self.client_id or f"{service}-{socket.gethostname()}-{os.getpid()}"
        return BusOptions(
            broker=self.broker,
            client_id=client_id,
            service=service,
            charger=charger,
            status_topic=status_topic,
            username=self.broker_username,
            password=(self.broker_password.get_secret_value() if self.broker_password else None),
            keepalive=self.keepalive,
            session_expiry=session_expiry,
        )


class DatabaseSettings(BaseSettings):
    """Where a service keeps its tables: a URL, or by default SQLite in the data folder."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)

    data_dir: Path = Path(".station")
    database_url: DatabaseUrl | None = None
    """Default ``sqlite:///<data_dir>/<service>.db``; a ``postgresql://`` URL works too."""

    @model_validator(mode="before")
    @classmethod
    def _empty_url_is_the_default(cls, values: Any) -> Any:
        # ``STATION_<SERVICE>_DATABASE_URL=`` (empty) means the default, as it always has.
        if isinstance(values, dict) and values.get("database_url") == "":
            values = {**values, "database_url": None}
        return values

    def database(self, service: str) -> URL:
        if self.database_url is not None:
            return self.database_url
        return _database_url(f"sqlite:///{self.data_dir / f'{service}.db'}")


class MeterSettings(BaseSettings):
    """What the piles' meters can count: the rule of ``station_protocol.plausibility``.

    The collector and billing both judge readings by it, so both take the same settings
    (``STATION_COLLECTOR_RATED_POWER``, ``STATION_BILLING_RATED_POWER``, ...); set them alike.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    rated_power: Decimal = Field(default=DEFAULT_RATED_POWER, gt=0, le=10_000, allow_inf_nan=False)
    """kW: the most a pile delivers, unless ``pile_rated_powers`` names it."""
    pile_rated_powers: dict[PileId, Annotated[Decimal, Field(gt=0, le=10_000)]] = Field(
        default_factory=dict
    )
    """Per-pile ratings as JSON (``{"c1-p01": 22}``) for piles below or above the default."""
    meter_burst: float = Field(default=DEFAULT_BURST, gt=0)
    """Seconds of rated-power credit a pile keeps while it reports steadily."""

    def rated_powers(self) -> RatedPowers:
        return RatedPowers(self.rated_power, tuple(sorted(self.pile_rated_powers.items())))

    def meter_credit(self, pile_id: str) -> MeterCredit:
        """A fresh judge for ``pile_id``'s readings."""
        return MeterCredit(rated_power=self.rated_powers().of(pile_id), burst=self.meter_burst)
