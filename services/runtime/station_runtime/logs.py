"""Structured logs: one JSON object a line, with pile, collector and session ids as fields.

Services log with ``extra={"pile_id": ..., "session_id": ...}``; this formatter writes those
fields next to the message so that a log shipper can filter by pile or session.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter


def configure_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON, tagged with the service."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
