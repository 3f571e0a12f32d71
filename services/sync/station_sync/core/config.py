"""Sync settings (``STATION_SYNC_*`` environment variables)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, StringConstraints, model_validator
from pydantic_settings import SettingsConfigDict
from sqlalchemy import URL

from station_protocol.central import MAX_BATCH
from station_protocol.ids import STATION_PATTERN
from station_runtime.settings import DatabaseSettings, ServiceSettings

SERVICE = "sync"
OUTBOX_OWNER = "billing"
"""The service whose database holds the outbox: sync's default database is billing's."""


class Settings(ServiceSettings, DatabaseSettings):
    """Where billing's outbox is, where central is, and how patiently to send.

    ``database_url`` is billing's database (sync reads its outbox table and nothing else);
    by default ``sqlite:///<data_dir>/billing.db``, the SQLite file billing uses with the
    same ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="STATION_SYNC_", frozen=True, extra="ignore")

    port: int = Field(default=8104, ge=0, le=65535)
    station_id: Annotated[str, StringConstraints(pattern=STATION_PATTERN)] = "station-1"
    central_url: str = "http://127.0.0.1:8110"
    """Kept as written: ``/api/v1/sync`` and the fault's detail show it so, and a pydantic URL
    type would rewrite it (``http://host:8110`` becomes ``http://host:8110/``)."""
    central_token: SecretStr | None = None
    """This station's token at central (``POST /api/v1/stations`` gives it)."""
    t2: float = Field(default=60.0, ge=0)
    """Seconds a record waits in the outbox after it was stored before it is sent."""
    batch_size: int = Field(default=500, ge=1, le=MAX_BATCH)
    poll_interval: float = Field(default=1.0, gt=0)
    """Longest sleep while nothing is due."""
    retry_min: float = Field(default=0.5, gt=0)
    retry_max: float = Field(default=60.0, gt=0)
    """Backoff after a failed send: from ``retry_min``, doubling, with jitter, up to this."""
    request_timeout: float = Field(default=30.0, gt=0)
    backlog_fault_after: float = Field(default=300.0, ge=0)
    """Seconds central may be unreachable before the ``central_sync_backlog`` fault."""
    stats_interval: float = Field(default=1.0, gt=0)
    """How often the backlog metrics are recomputed while records flow."""

    @model_validator(mode="after")
    def _backoff_in_order(self) -> Settings:
        if self.retry_max < self.retry_min:
            raise ValueError("retry_max must not be below retry_min")
        return self

    def outbox_database(self) -> URL:
        """Billing's database, where the outbox is."""
        return self.database(OUTBOX_OWNER)
