"""Alembic environment: runs on the connection the service hands in (see ``migrate``)."""

from __future__ import annotations

from alembic import context

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=None,
    version_table=context.config.get_main_option("version_table") or "alembic_version_central",
    render_as_batch=True,
)

with context.begin_transaction():
    context.run_migrations()
