"""Central's routers, mounted by the service skeleton under its API prefix.

The paths are the contract's (:class:`station_protocol.central.CentralPaths`, which sync
calls), taken relative to that prefix, so the URLs stay exactly the contract's.
"""

from __future__ import annotations

from station_protocol.central import API_ROOT
from station_runtime.service import API_PREFIX

if API_ROOT != API_PREFIX:
    raise RuntimeError(f"central's API root {API_ROOT} is not where routers are {API_PREFIX}")


def mounted(path: str) -> str:
    """``/api/v1/stations`` -> ``/stations``: the route's path under the mounted prefix."""
    if not path.startswith(f"{API_PREFIX}/"):
        raise ValueError(f"{path} is not under {API_PREFIX}")
    return path.removeprefix(API_PREFIX)
