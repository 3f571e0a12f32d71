"""What every station service runs on; a library, not a service (no entry point).

The bus client (:mod:`.bus`), the service skeleton that assembles settings, clock, database,
bus, background tasks and the FastAPI app (:mod:`.service`), settings every service shares
(:mod:`.settings`), ``/health``, ``/ready`` and ``/metrics`` (:mod:`.health`), JSON logs
(:mod:`.logs`), Alembic migrations (:mod:`.migrations`), exact column types
(:mod:`.columns`) and billing's outbox table, which sync reads (:mod:`.outbox`).

It imports the contracts (``station_protocol``) and never a service.
"""
