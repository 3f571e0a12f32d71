"""Alembic environment: runs on the connection that ``station_runtime.migrations``
hands over, so that migrating is part of the service's own start and uses its engine."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import station_verification.models  # noqa: F401  (registers the tables on the metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    version_table=context.config.get_main_option("version_table") or "alembic_version",
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
