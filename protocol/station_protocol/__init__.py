"""Contracts of the charging station.

Everything that crosses a process boundary is defined here and nowhere else: the topic tree
(:mod:`.topics`), the identifiers (:mod:`.ids`), the pile as a Zigbee2MQTT device
(:mod:`.zigbee`), the station's own bus messages (:mod:`.messages`), the OCPI 2.2.1 models
(:mod:`.ocpi`), and the bus client that speaks the request/response contract (:mod:`.bus`).
"""

PROTOCOL_VERSION = "v1"
