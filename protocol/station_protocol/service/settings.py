"""Settings every service has; each service subclasses with its own env prefix."""

from __future__ import annotations

import os
import socket

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from station_protocol.bus import BrokerAddress, BusOptions


class ServiceSettings(BaseSettings):
    """Common settings: where the broker is, where to listen, how to log.

    ``STATION_<SERVICE>_BROKER=mqtt://host:port`` and so on; see each service's subclass.
    """

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    broker: str = "mqtt://127.0.0.1:1883"
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
        if (
            self.secure
            and self.broker_password
            and self.broker_password.get_secret_value()
            in (
                "changethis",
                "secret",
                "password",
            )
        ):
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
            broker=BrokerAddress.parse(self.broker),
            client_id=client_id,
            service=service,
            charger=charger,
            status_topic=status_topic,
            username=self.broker_username,
            password=(self.broker_password.get_secret_value() if self.broker_password else None),
            keepalive=self.keepalive,
            session_expiry=session_expiry,
        )
