"""What is generated from the fault catalogue (``protocol/station_protocol/catalogue.yaml``).

Build-time artefacts, committed to the repository: ``protocol/FAULTS.md`` (:mod:`.runbook`),
the Prometheus alert rules (:mod:`.rules`) and the Grafana fault board (:mod:`.dashboard`,
which needs the dev-only ``grafana-foundation-sdk``). ``python -m station_tools.catalogue``
(or ``station-catalogue``) writes them all; ``--check`` only checks they are up to date.
"""
