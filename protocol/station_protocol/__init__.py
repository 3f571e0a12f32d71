"""Contracts of the charging station.

Everything that crosses a process boundary is defined here and nowhere else: the identifiers
(:mod:`.ids`), the topic tree (:mod:`.topics`) and the typed channels on it
(:mod:`.channels`), the pile as a Zigbee2MQTT device (:mod:`.zigbee`), the station's own bus
messages (:mod:`.messages`), the charging record (:mod:`.records`), the OCPI 2.2.1 models
(:mod:`.ocpi`), the station-to-central HTTP contract (:mod:`.central`) and the fault
catalogue as data (:mod:`.catalogue`).

It needs nothing but pydantic and PyYAML, so that a pile vendor, a kiosk or a test rig can
take the payload models without the station's runtime (that is ``station_runtime``).
"""

PROTOCOL_VERSION = "v1"
