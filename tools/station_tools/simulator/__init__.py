"""A Zigbee2MQTT pile simulator: N x M piles as Zigbee2MQTT 2.x publishes them.

Follows the pile contract of ``docs/contracts/pile-device.md`` (``station_protocol.zigbee``)
so that the collector cannot tell it from real piles behind a real Zigbee2MQTT.
"""

from station_tools.simulator.options import SimulatorOptions
from station_tools.simulator.pile import SimulatedPile
from station_tools.simulator.station import Simulator

__all__ = ["SimulatedPile", "Simulator", "SimulatorOptions"]
