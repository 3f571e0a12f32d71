"""Central settings (``STATION_CENTRAL_*`` environment variables)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from sqlalchemy import URL

from station_runtime.settings import DatabaseSettings, DatabaseUrl, ServiceSettings

SERVICE = "central"
WEAK_TOKENS = frozenset({"changethis", "secret", "password", "admin"})
HOST_ATTEMPT_SECONDS = 5
"""libpq's ``connect_timeout`` per host of ``database_hosts``: a dead server (a node gone,
no answer at all) costs this long before the next host is tried."""


class Replication(StrEnum):
    """What a record central confirmed survives (see docs/central-failover.md).

    ``sync``: the primary lists the standby in ``synchronous_standby_names`` and central's
    sessions commit with ``synchronous_commit = on``: a batch is answered only once its
    records are flushed to the standby's disk too. ``async``: central's sessions commit
    with ``synchronous_commit = local``: answered once on the primary's disk; the standby
    follows within the replication lag.
    """

    ASYNC = "async"
    SYNC = "sync"

    @property
    def synchronous_commit(self) -> str:
        return "on" if self is Replication.SYNC else "local"


def _hosts(value: Any) -> tuple[str, ...]:
    """``pg-a:5432,pg-b:5432`` (or a JSON list) into ``("pg-a:5432", "pg-b:5432")``."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return tuple(str(item).strip() for item in json.loads(text))
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return tuple(str(item).strip() for item in value)


Hosts = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_hosts)]


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
    database_hosts: Hosts = ()
    """``host:port`` of every PostgreSQL server that may be central's primary (the primary
    and its standby). Given, central connects to whichever of them accepts writes (libpq
    ``target_session_attrs=read-write``), so that after ``station-central failover`` it
    follows the promoted standby without a restart; ``database_url`` then gives the role,
    password and database only."""
    replication: Replication = Replication.ASYNC
    """``async`` or ``sync``: what a confirmed record survives (:class:`Replication`)."""
    standby_name: str = Field(default="standby", pattern=r"^[A-Za-z0-9_.-]+$")
    """The standby's ``application_name``: what ``synchronous_standby_names`` lists in
    ``sync`` mode, and how a re-joined standby introduces itself."""
    replication_sample_seconds: float = Field(default=5.0, gt=0)
    """How often central reads ``pg_stat_replication`` for its lag and standby metrics."""
    admin_database_url: DatabaseUrl | None = None
    """The role ``failover``, ``rejoin`` and ``replication`` use (default: ``database_url``'s).
    It needs ``pg_promote``, ``pg_reload_conf`` and ``ALTER SYSTEM`` on
    ``synchronous_standby_names``; ``rejoin`` also runs ``pg_rewind`` and ``pg_basebackup``
    as it (superuser or ``REPLICATION``)."""
    replication_user: str | None = None
    """The role a re-joined standby streams as (default: the admin role); its password comes
    from the standby's environment (``PGPASSWORD``) or ``.pgpass``, never from a file."""

    @field_validator("database_hosts")
    @classmethod
    def _host_and_port(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            name, _, port = host.rpartition(":")
            if not name or not port.isdigit():
                raise ValueError(f"database_hosts: {host!r} is not host:port")
        return value

    def database(self, service: str) -> URL:
        """Central's engine URL: over every host of ``database_hosts`` when given, with the
        replication mode's ``synchronous_commit`` for each of central's sessions."""
        url = super().database(service)
        if url.get_backend_name() != "postgresql":
            return url
        query: dict[str, str | tuple[str, ...]] = dict(url.query)
        if self.database_hosts:
            url = url._replace(host=None, port=None)
            query["host"] = self.database_hosts
            query.setdefault("target_session_attrs", "read-write")
            query.setdefault("connect_timeout", str(HOST_ATTEMPT_SECONDS))
        commit = f"-c synchronous_commit={self.replication.synchronous_commit}"
        options = query.get("options")
        query["options"] = f"{options} {commit}" if isinstance(options, str) else commit
        return url.set(query=query)

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A default or short secret would hand every station's records to whoever guesses it.
        if value is not None:
            secret = value.get_secret_value()
            if len(secret) < 16 or secret in WEAK_TOKENS:
                raise ValueError("admin_token must be at least 16 characters, not a default")
        return value
