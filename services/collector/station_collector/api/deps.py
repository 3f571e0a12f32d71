"""Request dependencies: the running collector (503 while it starts or stops)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from station_collector.collector import Collector
from station_runtime.deps import RunningDep


def get_collector(service: RunningDep) -> Collector:
    collector: Collector = service.state
    return collector


CollectorDep = Annotated[Collector, Depends(get_collector)]
