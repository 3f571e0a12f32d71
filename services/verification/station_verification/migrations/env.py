"""Alembic environment: the service's migrations run on the connection its start hands over."""

from __future__ import annotations

from sqlmodel import SQLModel

import station_verification.models  # noqa: F401  (registers the tables on the metadata)
from station_runtime.migrations import run_migrations

run_migrations(SQLModel.metadata)
