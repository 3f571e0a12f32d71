"""``python -m station_billing``: the billing service, configured by ``STATION_BILLING_*``."""

from __future__ import annotations

from station_billing.core.config import SERVICE, Settings
from station_billing.main import create_app
from station_protocol.service.app import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
