"""Operator actions, each through its owner's contract.

Maintenance is the console's own word, published retained on the bus for the pile's
collector; a bulletin's acknowledgement belongs to faults and an operator stop to billing,
so those go to their REST APIs and come back with the owner's answer.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from station_console.owners import Answer
from station_console.state import ConsoleState
from station_protocol import channels
from station_protocol.messages import PileMaintenance

log = logging.getLogger("station.console.actions")


async def set_maintenance(
    state: ConsoleState, pile_id: str, active: bool, reason: str, who: str
) -> PileMaintenance:
    """Publish the pile's maintenance (retained: its collector reads it again after a
    restart). Raises ``BusUnavailable`` when the broker cannot take it."""
    word = PileMaintenance(pile_id=pile_id, active=active, reason=reason, since=state.clock())
    await state.bus.send(channels.PILE_MAINTENANCE, word, pile=pile_id)
    state.board.put_maintenance(pile_id, word)
    log.info(
        "pile into maintenance" if active else "pile back from maintenance",
        extra={"pile_id": pile_id, "reason": reason, "who": who},
    )
    state.metrics.actions.labels("maintenance" if active else "in_service", "done").inc()
    return word


async def acknowledge(state: ConsoleState, bulletin_id: str, who: str) -> Answer:
    answer = await state.owners.faults.call(
        "POST", f"/api/v1/faults/{quote(bulletin_id, safe='')}/ack", json={"who": who}
    )
    state.metrics.actions.labels("acknowledge", str(answer.status)).inc()
    return answer


async def stop_session(state: ConsoleState, session_id: str) -> Answer:
    answer = await state.owners.billing.call(
        "POST", f"/api/v1/sessions/{quote(session_id, safe='')}/stop"
    )
    state.metrics.actions.labels("stop", str(answer.status)).inc()
    log.info("operator stop", extra={"session_id": session_id, "status": answer.status})
    return answer
