"""The outbox relay: billing's charging records to the central server, none lost.

Billing writes each record and its outbox row in one transaction; sync is the only other
reader of that table. It sends every record T2 after it was stored, in batches, marks it
sent only once central has confirmed it, and retries with backoff whatever did not get
through, so an outage of the uplink or of central only delays records. Central is
idempotent by record id, so a batch sent again after a crash is harmless.
"""
