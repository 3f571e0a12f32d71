"""Settings of the simulator process: environment first, command line over it.

The environment (``STATION_SIMULATOR_*``) is how ``station up`` and a container start it;
the command line is how a person does.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from station_protocol.channels import Z2M_ROOT
from station_tools.simulator.options import SimulatorOptions


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STATION_SIMULATOR_", frozen=True, extra="ignore")

    broker: str = "mqtt://127.0.0.1:1883"
    charger_brokers: dict[str, str] = Field(default_factory=dict)
    """Charger -> the broker its Zigbee2MQTT uses, where that is not ``broker`` (a
    collector's own broker); JSON in the environment."""
    layout: str = "4x12"
    speedup: Decimal = Field(default=Decimal(1), gt=0)
    power: Decimal = Field(default=Decimal("7.0"), gt=0)
    meter_interval: float = Field(default=1.0, gt=0)
    initial_energy: Decimal | None = Field(default=None, ge=0)
    seed: int = 0
    root: str = Z2M_ROOT
    qos: int = Field(default=0, ge=0, le=2)
    keepalive: int = Field(default=10, ge=1)
    """MQTT keep-alive of each bridge: a hung (stopped) simulator is seen after 1.5 x this."""
    instance: str = ""
    """Names this run in the retained status; default a fresh random id."""
    log_level: str = "INFO"

    def options(self) -> SimulatorOptions:
        return SimulatorOptions(
            power=self.power,
            meter_interval=self.meter_interval,
            speedup=self.speedup,
            initial_energy=self.initial_energy,
            seed=self.seed,
            root=self.root,
            qos=self.qos,
            keepalive=self.keepalive,
        )
