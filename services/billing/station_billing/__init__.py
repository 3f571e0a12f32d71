"""The billing service: sessions, their frozen tariffs, charging records and receipts.

Billing owns the money of the station. It opens a session when the collector says a
verified card is about to charge, prices it from the meter readings when the charge ends,
and stores the charging record before the receipt leaves, so that a receipt the driver has
seen always has a record behind it.
"""
