"""``/api/v1/tariffs``: the station's OCPI 2.2.1 tariffs, versioned.

``PUT /api/v1/tariffs/{id}`` stores an OCPI Tariff as a new version when it differs from
the latest (201), or changes nothing when it is the same (200): a tariff in use is never
edited in place, and sessions keep the version they started with. An invalid tariff is
refused with 422 and, for each problem, the field (``loc``) and why (``msg``), in FastAPI's
own error shape. Numbers are read from their JSON text exactly (never through a float);
``last_updated`` is set by billing's clock.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from station_billing.api.deps import StateDep
from station_billing.api.schemas import TariffOut
from station_billing.pricing import InvalidTariff, Problem, compile_tariff, read_tariff
from station_billing.tariff_store import StoredTariff
from station_runtime.api_types import RowId
from station_runtime.deps import ClockDep

router = APIRouter(prefix="/tariffs", tags=["tariffs"])

TariffId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[\x21-\x7e]+$")]


def refused(problems: list[Problem]) -> HTTPException:
    """422 in FastAPI's shape: ``{"detail": [{"loc": ["body", ...], "msg": ..., "type": ...}]}``."""
    return HTTPException(
        422,
        detail=[
            {"loc": ["body", *problem.loc], "msg": problem.msg, "type": "value_error"}
            for problem in problems
        ],
    )


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise refused([Problem((), f"not JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise refused([Problem((), "an OCPI Tariff object is required")])
    return data


@router.put(
    "/{tariff_id}",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": TariffOut, "description": "the same as the latest version"}},
)
async def put_tariff(
    tariff_id: TariffId,
    request: Request,
    response: Response,
    state: StateDep,
    clock: ClockDep,
) -> TariffOut:
    data = await _body(request)
    if data.setdefault("id", tariff_id) != tariff_id:
        raise refused([Problem(("id",), f"must be the id in the path ({tariff_id})")])
    now = clock()
    data.setdefault("last_updated", now)
    try:
        tariff = read_tariff(data)
        compile_tariff(tariff)  # what sessions will price with must compile now, not later
    except InvalidTariff as exc:
        raise refused(exc.problems) from None
    except ValueError as exc:
        raise refused([Problem(("elements",), str(exc))]) from None
    currency = state.settings.currency
    if tariff.currency != currency:
        raise refused([Problem(("currency",), f"must be the station's currency ({currency})")])
    stored, created = await asyncio.to_thread(state.tariffs.put, tariff, now)
    if not created:
        response.status_code = status.HTTP_200_OK
    state.displays.poke()
    return TariffOut.of(stored)


@router.get("")
def list_tariffs(state: StateDep) -> list[TariffOut]:
    """The latest version of every tariff, by id."""
    return [TariffOut.of(stored) for stored in state.tariffs.all_latest()]


@router.get("/{tariff_id}")
def get_tariff(
    tariff_id: TariffId,
    state: StateDep,
    version: Annotated[RowId | None, Query()] = None,
) -> TariffOut:
    """The latest version, or ``?version=N``."""
    store = state.tariffs
    stored: StoredTariff | None = (
        store.latest(tariff_id) if version is None else store.version(tariff_id, version)
    )
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tariff {tariff_id}")
    return TariffOut.of(stored)


@router.get("/{tariff_id}/versions")
def tariff_versions(tariff_id: TariffId, state: StateDep) -> list[TariffOut]:
    versions = state.tariffs.versions(tariff_id)
    if not versions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tariff {tariff_id}")
    return [TariffOut.of(stored) for stored in versions]
