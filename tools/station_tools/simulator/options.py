"""How a simulated station behaves: rated power, meter pace, and where it publishes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from station_protocol.channels import Z2M_ROOT


@dataclass(frozen=True)
class SimulatorOptions:
    """Frozen, so that a running simulation never changes its physics under a test's feet."""

    power: Decimal = Decimal("7.0")
    """kW a pile draws while it charges (a 32 A single-phase wallbox is about 7 kW)."""
    voltage: Decimal = Decimal("230.0")
    meter_interval: float = 1.0
    """Seconds between meter readings published by a charging pile."""
    speedup: Decimal = Decimal(1)
    """Simulated seconds of charging per real second, so that demos and tests see real kWh."""
    initial_energy: Decimal | None = None
    """Every pile's meter register at start (kWh); ``None``: a different one per pile."""
    seed: int = 0
    """Seeds the per-pile meter start and link quality, so that two runs look the same."""
    root: str = Z2M_ROOT
    """The Zigbee2MQTT root; each charger's base topic is ``<root>/<charger>``."""
    qos: int = 0
    """QoS of pile state messages (Zigbee2MQTT's default device QoS is 0)."""
    keepalive: int = 10
    connect_timeout: float = 10.0
    """How long entering the simulator waits for every bridge to be online."""

    def __post_init__(self) -> None:
        if self.power <= 0 or self.voltage <= 0:
            raise ValueError("power and voltage must be positive")
        if self.meter_interval <= 0:
            raise ValueError("meter_interval must be positive")
        if self.speedup <= 0:
            raise ValueError("speedup must be positive")
        if self.initial_energy is not None and self.initial_energy < 0:
            raise ValueError("initial_energy must not be negative")
        if self.qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
