"""The central server: the charging records of every station, off-site.

Stations push their records here through their outbox relay (sync). Central is the second
half of invariant 2 of ``docs/invariants.md`` (no record lost, none duplicated): it stores a
record once however often it is sent, refuses a different record under an id it already
holds, and answers per record, so that a station marks as sent exactly what central holds.
Its PostgreSQL primary streams to a standby, the backup server that keeps a real-time copy.
"""
