"""Running a service: uvicorn with the service's app, JSON logs, clean SIGTERM."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from station_runtime.logs import configure_logging
from station_runtime.settings import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings, service: str) -> None:
    """Serve until SIGTERM or Ctrl-C; uvicorn runs the lifespan, which owns the bus."""
    configure_logging(service, settings.log_level)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
