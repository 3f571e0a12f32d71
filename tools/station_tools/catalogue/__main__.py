"""``python -m station_tools.catalogue [--check] [--root DIR] [--runbook-base URL]``."""

from __future__ import annotations

from station_tools.catalogue.generate import main

if __name__ == "__main__":
    main()
