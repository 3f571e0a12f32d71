"""Errors as RFC 9457 problem details (``application/problem+json``), for the kiosk.

A kiosk shows a driver what went wrong; ``title`` says what kind of error it is, ``detail``
the owner's or the console's own words about this one, and ``reason`` (when there is one)
a code a kiosk can translate.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from station_console.owners import OwnerAway
from station_runtime.bus import BusUnavailable

PROBLEM = "application/problem+json"


class Problem(HTTPException):
    """An HTTP error with a machine-readable ``reason`` beside its human ``detail``."""

    def __init__(self, status: int, detail: str, reason: str | None = None) -> None:
        super().__init__(status_code=status, detail=detail)
        self.reason = reason


def problem(status: int, detail: Any, instance: str, **more: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        **{key: value for key, value in more.items() if value is not None},
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    reason = exc.reason if isinstance(exc, Problem) else None
    response = problem(exc.status_code, exc.detail, request.url.path, reason=reason)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(error.get("loc", ())), "msg": error.get("msg", "")} for error in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return problem(422, summary or "invalid request", request.url.path, errors=errors)


async def _away(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OwnerAway)
    return problem(503, str(exc), request.url.path, reason=f"{exc.owner}_unavailable")


async def _no_broker(request: Request, exc: Exception) -> JSONResponse:
    return problem(503, "station broker unavailable", request.url.path, reason="broker_unavailable")


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(OwnerAway, _away)
    app.add_exception_handler(BusUnavailable, _no_broker)
