"""FastAPI dependencies of central's own: its stores and metrics, and who is calling.

The running service and the clock come from ``station_runtime.deps``. Who may do what is
decided here: a bearer token is either the admin token (create stations, read every record)
or a station's token (write and read that station's records only). No token or an unknown
one is 401; a known token doing what it may not is 403. Tests swap these with
``app.dependency_overrides``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Path, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from station_central.core.config import Settings
from station_central.metrics import CentralMetrics
from station_central.records import RecordStore
from station_central.state import Central
from station_central.stations import StationStore
from station_central.tokens import same_secret
from station_protocol.ids import STATION_PATTERN
from station_runtime.deps import RunningDep

bearer = HTTPBearer(auto_error=False, description="A station's token, or the admin token")


def get_central(service: RunningDep) -> Central:
    return cast(Central, service.state)


CentralDep = Annotated[Central, Depends(get_central)]


def get_settings(central: CentralDep) -> Settings:
    return central.settings


def get_stations(central: CentralDep) -> StationStore:
    return central.stations


def get_records(central: CentralDep) -> RecordStore:
    return central.records


def get_metrics(central: CentralDep) -> CentralMetrics:
    return central.metrics


SettingsDep = Annotated[Settings, Depends(get_settings)]
StationsDep = Annotated[StationStore, Depends(get_stations)]
RecordsDep = Annotated[RecordStore, Depends(get_records)]
MetricsDep = Annotated[CentralMetrics, Depends(get_metrics)]


@dataclass(frozen=True)
class Caller:
    """Who is calling: the admin, or one station."""

    station_id: str | None
    """``None`` for the admin."""

    @property
    def is_admin(self) -> bool:
        return self.station_id is None


def refuse(metrics: CentralMetrics, status: int, detail: str) -> HTTPException:
    metrics.refused_calls.labels(str(status)).inc()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status_code=status, detail=detail, headers=headers)


def get_caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    settings: SettingsDep,
    stations: StationsDep,
    metrics: MetricsDep,
) -> Caller:
    if credentials is None:
        raise refuse(metrics, 401, "a bearer token is required")
    token = credentials.credentials
    admin = settings.admin_token
    if admin is not None and same_secret(token, admin.get_secret_value()):
        return Caller(station_id=None)
    station_id = stations.station_of(token)
    if station_id is None:
        raise refuse(metrics, 401, "unknown token")
    return Caller(station_id=station_id)


CallerDep = Annotated[Caller, Depends(get_caller)]


def require_admin(caller: CallerDep, metrics: MetricsDep) -> Caller:
    if not caller.is_admin:
        raise refuse(metrics, 403, "only the admin token may do this")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]


def station_writer(
    station_id: Annotated[str, Path(pattern=STATION_PATTERN)],
    caller: CallerDep,
    metrics: MetricsDep,
) -> str:
    """The station in the path, if the caller is that station (not even the admin writes)."""
    if caller.station_id != station_id:
        raise refuse(metrics, 403, f"this token may not write records of station {station_id}")
    return station_id


StationWriterDep = Annotated[str, Depends(station_writer)]
