"""Request dependencies: the running collector, swappable in tests."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from station_collector.collector import Collector


def get_collector(request: Request) -> Collector:
    collector: Collector | None = getattr(request.app.state, "collector", None)
    if collector is None:
        raise HTTPException(503, "collector not running")
    return collector


CollectorDep = Annotated[Collector, Depends(get_collector)]
