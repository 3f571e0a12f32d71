"""``python -m station_collector``: one collector, configured by ``STATION_COLLECTOR_*``."""

from __future__ import annotations

from station_collector.core.config import Settings
from station_collector.main import create_app
from station_runtime.serve import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, f"collector-{settings.charger}")


if __name__ == "__main__":
    main()
