"""``python -m station_sync``: the outbox relay, configured by ``STATION_SYNC_*``."""

from __future__ import annotations

from station_runtime.serve import serve
from station_sync.core.config import SERVICE, Settings
from station_sync.main import create_app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
