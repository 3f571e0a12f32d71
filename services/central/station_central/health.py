"""``/health``, ``/ready`` and ``/metrics`` for central, which has no station bus.

The station services' health router counts a broker connection as part of readiness;
central runs off-site and speaks only HTTP, so it is ready when its database answers.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


def health_router(
    registry: CollectorRegistry, database: Callable[[], Awaitable[bool]]
) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health")
    async def health() -> dict[str, str | int]:
        # The pid tells whoever started the process that it is this one answering, not an
        # older one still holding the port.
        return {"status": "ok", "pid": os.getpid()}

    @router.get("/ready")
    async def ready() -> JSONResponse:
        try:
            ok = await database()
        except Exception:
            ok = False
        return JSONResponse(
            {
                "status": "ready" if ok else "unavailable",
                "checks": {"database": ok},
                "pid": os.getpid(),
            },
            status_code=200 if ok else 503,
        )

    @router.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
