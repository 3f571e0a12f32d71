"""One simulated pile: its gun, meter, charge contactor, display and radio, without any I/O.

Kept free of MQTT so that the rules of a pile (no charge without a plugged gun, a meter that
only moves forward and only while charging, a fault that opens the contactor) are in one
place and the bridge only carries messages.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

from station_protocol.zigbee import (
    ChargeCommand,
    ChargePointErrorCode,
    DeviceDefinition,
    Display,
    Gun,
    PileAction,
    PileState,
)
from station_tools.simulator.options import SimulatorOptions

REGISTER = Decimal("0.001")
"""The meter register's resolution (kWh) as a pile reports it."""
_EXACT = Decimal("1E-12")
_SECONDS_PER_HOUR = Decimal(3600)

DEFINITION = DeviceDefinition(
    model="EVSE-22", vendor="Station Sim", description="Simulated AC charging pile (22 kW)"
)
"""What Zigbee2MQTT's interview makes of a simulated pile."""


def stable_ieee_address(pile_id: str) -> str:
    """A made-up IEEE address for a pile of the layout, the same on every run."""
    return "0x" + hashlib.sha256(pile_id.encode()).hexdigest()[:16]


@dataclass
class SimulatedPile:
    pile_id: str
    """Its Zigbee2MQTT friendly name: a pile id, or its IEEE address until it is renamed."""
    rated_power: Decimal
    voltage: Decimal
    meter: Decimal
    """The meter's exact count in kWh; the register (``energy``) shows it rounded down."""
    linkquality: int
    gun: Gun = Gun.UNPLUGGED
    charging: bool = False
    session_id: str | None = None
    error_code: ChargePointErrorCode = ChargePointErrorCode.NO_ERROR
    breath_ack: int | None = None
    """``None`` until the first breath: the pile has nothing to acknowledge yet."""
    silenced: bool = False
    joined: bool = True
    displays: list[Display] = field(default_factory=list)
    metered_at: float = 0.0
    """Monotonic time up to which the meter has counted the energy delivered."""
    ieee_address: str = ""
    """Its radio's address, which never changes, whatever its name."""

    def __post_init__(self) -> None:
        if not self.ieee_address:
            self.ieee_address = stable_ieee_address(self.pile_id)

    @classmethod
    def create(
        cls, pile_id: str, options: SimulatorOptions, ieee_address: str = ""
    ) -> SimulatedPile:
        rng = random.Random(f"{options.seed}:{pile_id}")
        meter = options.initial_energy
        if meter is None:
            meter = Decimal(rng.randint(100_000, 5_000_000)) / 1000
        return cls(
            pile_id=pile_id,
            rated_power=options.power,
            voltage=options.voltage,
            meter=meter,
            linkquality=rng.randint(90, 220),
            ieee_address=ieee_address,
        )

    @property
    def energy(self) -> Decimal:
        """The register: what the pile reports, never ahead of what was delivered."""
        return self.meter.quantize(REGISTER, rounding=ROUND_DOWN)

    @property
    def power(self) -> Decimal:
        return self.rated_power if self.charging else Decimal("0.0")

    @property
    def current(self) -> Decimal:
        amps = self.power * 1000 / self.voltage
        return amps.quantize(Decimal("0.1"), rounding=ROUND_HALF_EVEN)

    @property
    def display(self) -> Display | None:
        """What the pile's screen shows now (the last display command)."""
        return self.displays[-1] if self.displays else None

    def plug(self) -> bool:
        if self.gun == Gun.PLUGGED:
            return False
        self.gun = Gun.PLUGGED
        return True

    def unplug(self, now: float, speedup: Decimal) -> bool:
        """Pulling the gun ends a charge at once, as the car's contactor opens."""
        if self.gun == Gun.UNPLUGGED:
            return False
        self._open_contactor(now, speedup)
        self.gun = Gun.UNPLUGGED
        return True

    def start(self, command: ChargeCommand, now: float) -> bool:
        """Close the contactor for ``command``'s session, if a car is there and all is well.

        A pile that already charges keeps its session: a second start never hands a running
        charge to another session.
        """
        if self.gun != Gun.PLUGGED or self.error_code != ChargePointErrorCode.NO_ERROR:
            return False
        if self.charging:
            return False
        self.metered_at = now
        self.charging = True
        self.session_id = command.session_id
        return True

    def stop(self, command: ChargeCommand, now: float, speedup: Decimal) -> bool:
        """Stop only the session named: a late stop for an earlier session changes nothing."""
        if not self.charging or command.session_id != self.session_id:
            return False
        self._open_contactor(now, speedup)
        return True

    def fault(self, code: ChargePointErrorCode, now: float, speedup: Decimal) -> bool:
        """Report ``code``; any fault but ``NoError`` stops a charge, as a pile protects itself."""
        if code == self.error_code:
            return False
        if code != ChargePointErrorCode.NO_ERROR:
            self._open_contactor(now, speedup)
        self.error_code = code
        return True

    def advance(self, now: float, speedup: Decimal) -> bool:
        """Count the energy delivered since the last reading; ``True`` if the pile charges."""
        if not self.charging:
            return False
        elapsed = Decimal(max(now - self.metered_at, 0.0))
        delivered = self.rated_power * elapsed * speedup / _SECONDS_PER_HOUR
        self.meter = (self.meter + delivered).quantize(_EXACT, rounding=ROUND_DOWN)
        self.metered_at = now
        return True

    def _open_contactor(self, now: float, speedup: Decimal) -> None:
        self.advance(now, speedup)
        self.charging = False

    def state(self, swiped_card: str | None = None) -> PileState:
        """The full state, as Zigbee2MQTT's state cache publishes it on every change.

        A swipe is the one message with ``action`` and ``card_uid``; the state cache never
        keeps them, so no later message replays a swipe.
        """
        return PileState(
            gun=self.gun,
            action=PileAction.CARD_SWIPE if swiped_card is not None else None,
            card_uid=swiped_card,
            energy=self.energy,
            power=self.power,
            current=self.current,
            voltage=self.voltage,
            charging=self.charging,
            session_id=self.session_id,
            error_code=self.error_code,
            breath_ack=self.breath_ack,
            linkquality=self.linkquality,
        )
