"""``/health`` (the process lives), ``/ready`` (it can do its work) and ``/metrics``.

Ready is one computed value from several checks, as Home Assistant computes availability:
a service is not ready while its broker connection is down, whatever else is fine.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], Awaitable[bool]]


def health_router(
    checks: Callable[[], Mapping[str, Check]],
    registry: Callable[[], CollectorRegistry | None],
) -> APIRouter:
    """``checks`` and ``registry`` are asked at each request: they belong to the running
    service, which comes and goes with the app's lifespan."""
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> dict[str, str | int]:
        # The pid tells whoever started the process that it is this one answering, not an
        # older one still holding the port.
        return {"status": "ok", "pid": os.getpid()}

    @router.get("/ready")
    async def ready() -> JSONResponse:
        results: dict[str, bool] = {}
        for name, check in checks().items():
            try:
                results[name] = await check()
            except Exception:
                results[name] = False
        ok = bool(results) and all(results.values())
        return JSONResponse(
            {"status": "ready" if ok else "unavailable", "checks": results, "pid": os.getpid()},
            status_code=200 if ok else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        current = registry()
        if current is None:
            return Response("service starting or stopping\n", status_code=503)
        return Response(generate_latest(current), media_type=CONTENT_TYPE_LATEST)

    return router
