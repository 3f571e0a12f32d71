"""Central settings (``STATION_CENTRAL_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from station_runtime.settings import ServiceSettings

SERVICE = "central"
WEAK_TOKENS = frozenset({"changethis", "secret", "password", "admin"})


class Settings(ServiceSettings):
    """Where central keeps the records and who may administer it.

    Central runs off-site and speaks only HTTP: the broker settings it inherits are unused.
    Without ``admin_token`` no station can be created (stations' tokens come only from
    ``POST /api/v1/stations`` with the admin token).
    """

    model_config = SettingsConfigDict(env_prefix="STATION_CENTRAL_", frozen=True, extra="ignore")

    port: int = Field(default=8110, ge=0, le=65535)
    data_dir: Path = Path(".station")
    database_url: str = ""
    """Default ``sqlite:///<data_dir>/central.db``; in production a ``postgresql://`` URL."""
    admin_token: SecretStr | None = None
    max_page: int = Field(default=10_000, ge=1)
    """Most records one ``GET /api/v1/records`` returns."""

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            if len(secret) < 16 or secret in WEAK_TOKENS:
                raise ValueError("admin_token must be at least 16 characters, not a default")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / f'{SERVICE}.db'}"
