"""Alembic environment: the service's migrations run on the connection its start hands over."""

from __future__ import annotations

from station_runtime.migrations import run_migrations

run_migrations()
