"""``python -m station_verification``: the service as a container or ``station up`` runs it."""

from __future__ import annotations

from station_runtime.serve import serve
from station_verification.core.config import SERVICE, Settings
from station_verification.main import create_app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings, SERVICE)


if __name__ == "__main__":
    main()
