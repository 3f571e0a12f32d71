"""The board page and its assets, all served by the console itself (no CDN, nothing fetched
at run time: a station's screen may have no internet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from station_console.api import problems

STATIC = Path(__file__).parent / "static"


def extend(app: FastAPI) -> None:
    """The page at ``/``, its assets under ``/static``, and problem-details errors."""
    problems.install(app)

    @app.get("/", include_in_schema=False)
    async def board() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
