"""Schema versions with Alembic: a service migrates its database to head before it serves.

Each service keeps its own ``migrations/`` folder (env.py plus versions) and its own version
table, so that two services may share one PostgreSQL database without touching each other.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import URL, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url


def make_engine(url: URL | str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and foreign keys, the file's folder is created."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection: object, _record: object) -> None:
            cursor = connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # The URL object itself: str() of a URL masks its password as "***".
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def ping(engine: Engine) -> bool:
    """The database answers a trivial query (readiness)."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT 1")).scalar() == 1


def migrate(engine: Engine, migrations: Path, version_table: str) -> None:
    """Bring the database to the newest schema (idempotent; safe on every start)."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("version_table", version_table)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def run_migrations(metadata: MetaData | None = None) -> None:
    """The body of every service's Alembic ``env.py``: migrate on the connection that
    :func:`migrate` hands over, so that migrating is part of the service's own start, on its
    own engine and version table. ``render_as_batch`` lets SQLite alter tables too."""
    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        target_metadata=metadata,
        version_table=config.get_main_option("version_table") or "alembic_version",
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
