"""What every station service shares at run time: settings, health, metrics, migrations.

Kept here, beside the contracts, so that each service is only its own domain code: a
service that is unavailable whenever its broker connection is down, that refuses to start
on a database it cannot migrate, and that exports its metrics the same way as the others.
"""
