"""``python -m station_console``: the console, configured by ``STATION_CONSOLE_*``."""

from __future__ import annotations

from station_console.core.config import SERVICE, Settings
from station_console.main import create_app
from station_runtime.serve import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
