"""The contracts stand alone: a pile vendor or kiosk takes them without the station's runtime."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import station_protocol

RUNTIME_ONLY = frozenset(
    {"aiomqtt", "paho", "fastapi", "uvicorn", "sqlalchemy", "sqlmodel", "alembic"}
    | {"prometheus_client", "pydantic_settings", "station_runtime"}
)


def test_importing_every_contract_module_loads_no_runtime_package() -> None:
    modules = [
        f"station_protocol.{info.name}" for info in pkgutil.iter_modules(station_protocol.__path__)
    ]
    assert "station_protocol.channels" in modules
    program = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint(RUNTIME_ONLY), sorted(loaded & RUNTIME_ONLY)
