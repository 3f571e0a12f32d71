"""``/api/v1/stations``: the admin registers stations and issues their tokens.

A token is shown once, in the answer that issues it; central keeps only its hash, so a
lost token is replaced (``POST .../token``), never recovered.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from station_central.api.deps import AdminDep, StationsDep
from station_central.api.routes import mounted
from station_protocol.central import (
    CentralPaths,
    Station,
    StationCredentials,
    StationRegistration,
)
from station_protocol.ids import STATION_PATTERN

log = logging.getLogger("station.central.stations")

router = APIRouter(tags=["stations"])


@router.post(mounted(CentralPaths.STATIONS), status_code=201)
def create_station(
    registration: StationRegistration, stations: StationsDep, _admin: AdminDep
) -> StationCredentials:
    credentials = stations.create(registration)
    if credentials is None:
        raise HTTPException(
            status_code=409, detail=f"station {registration.station_id} exists already"
        )
    log.info("station registered", extra={"station_id": registration.station_id})
    return credentials


@router.get(mounted(CentralPaths.STATIONS))
def list_stations(stations: StationsDep, _admin: AdminDep) -> list[Station]:
    return stations.all()


@router.post(mounted(CentralPaths.STATION_TOKEN_TEMPLATE))
def renew_token(
    station_id: Annotated[str, Path(pattern=STATION_PATTERN)],
    stations: StationsDep,
    _admin: AdminDep,
) -> StationCredentials:
    credentials = stations.rotate(station_id)
    if credentials is None:
        raise HTTPException(status_code=404, detail=f"no station {station_id}")
    log.info(
        "station token renewed; the station's sync needs it installed (station sync token)",
        extra={"station_id": station_id},
    )
    return credentials
