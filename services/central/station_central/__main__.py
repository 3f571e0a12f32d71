"""``python -m station_central``: the central server, configured by ``STATION_CENTRAL_*``."""

from __future__ import annotations

from station_central.core.config import SERVICE, Settings
from station_central.main import create_app
from station_runtime.serve import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
