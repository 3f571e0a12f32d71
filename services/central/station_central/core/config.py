"""Central settings (``STATION_CENTRAL_*`` environment variables)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from station_runtime.settings import DatabaseSettings, ServiceSettings

SERVICE = "central"
WEAK_TOKENS = frozenset({"changethis", "secret", "password", "admin"})


class Settings(ServiceSettings, DatabaseSettings):
    """Where central keeps the records and who may administer it.

    Central runs off-site and speaks only HTTP: the broker settings it inherits are unused.
    ``database_url`` defaults to ``sqlite:///<data_dir>/central.db``; in production it is a
    ``postgresql://`` URL. Without ``admin_token`` no station can be created (stations'
    tokens come only from ``POST /api/v1/stations`` with the admin token).
    """

    model_config = SettingsConfigDict(env_prefix="STATION_CENTRAL_", frozen=True, extra="ignore")

    port: int = Field(default=8110, ge=0, le=65535)
    admin_token: SecretStr | None = None
    max_page: int = Field(default=10_000, ge=1)
    """Most records one ``GET /api/v1/records`` returns."""
    export_page: int = Field(default=1000, ge=1)
    """Records ``GET /api/v1/records.csv`` reads from the database at a time: the export
    streams page by page, so its size is no limit on what it may hold."""

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A default or short secret would hand every station's records to whoever guesses it.
        if value is not None:
            secret = value.get_secret_value()
            if len(secret) < 16 or secret in WEAK_TOKENS:
                raise ValueError("admin_token must be at least 16 characters, not a default")
        return value
