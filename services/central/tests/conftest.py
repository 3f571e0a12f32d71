"""Central under test: the real app (lifespan, migrations) on SQLite and on a private PostgreSQL.

The tests play a station (its token, its batches) and an operator (the admin token) over
HTTP, exactly as sync and the operators' tools do.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from station_central.core.config import Settings
from station_central.main import create_app
from station_tools.central import CentralApi
from station_tools.postgres import TEST_SETTINGS, Postgres
from station_tools.testing import served

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One private PostgreSQL for the run; each test gets a database of its own on it."""
    with Postgres(settings=TEST_SETTINGS) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"central_{uuid.uuid4().hex[:12]}")


@asynccontextmanager
async def running_central(database_url: str, **settings: Any) -> AsyncIterator[CentralApi]:
    app = create_app(Settings(database_url=database_url, admin_token=ADMIN_TOKEN, **settings))
    async with served(app, "central", bus=False) as http:
        yield CentralApi(http, ADMIN_TOKEN)


@pytest.fixture
async def central(database_url: str) -> AsyncIterator[CentralApi]:
    """Central in this process, on SQLite and again on PostgreSQL."""
    async with running_central(database_url) as api:
        yield api


@pytest.fixture
async def central_on_sqlite(tmp_path: Path) -> AsyncIterator[CentralApi]:
    """For tests about the HTTP contract only, where the database makes no difference."""
    async with running_central(f"sqlite:///{tmp_path / 'central.db'}") as api:
        yield api


@pytest.fixture
async def central_paging(database_url: str) -> AsyncIterator[CentralApi]:
    """Central that exports records 7 at a time, so a few dozen records span many pages."""
    async with running_central(database_url, export_page=7) as api:
        yield api
