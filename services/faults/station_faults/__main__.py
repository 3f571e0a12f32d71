"""``python -m station_faults``: the faults service, configured by ``STATION_FAULTS_*``."""

from __future__ import annotations

from station_faults.core.config import SERVICE, Settings
from station_faults.main import create_app
from station_runtime.serve import serve


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
