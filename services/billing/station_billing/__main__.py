"""``python -m station_billing`` / ``station-billing``: serve, or ``price`` CDRs offline.

With no arguments (as the station launcher and containers run it) it serves, configured
by ``STATION_BILLING_*``; see :mod:`station_billing.cli` for ``price``.
"""

from __future__ import annotations

from station_billing.cli import main

if __name__ == "__main__":
    main()
