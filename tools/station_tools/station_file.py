"""``<data dir>/station.json``: where a running station is, for the commands run beside it.

``station pile ...`` and ``station down`` find the broker and the launcher through it, so that
nobody has to copy a free port number from one terminal to another.
"""

from __future__ import annotations

import contextlib
import os
from enum import StrEnum
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

FILE_NAME = "station.json"


class StationState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"


class ServiceEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    url: str | None = None
    """Base URL of its HTTP API (``/health``, ``/metrics``), if it has one."""
    port: int | None = None
    pid: int | None = None
    log: str


class StationFile(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: StationState
    broker: str
    launcher_pid: int
    started_at: AwareDatetime
    layout: str | None = None
    """The simulated ``NxM``, or ``None`` without a simulator."""
    t1: float
    t2: float
    speedup: str
    services: list[ServiceEntry] = []

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / FILE_NAME

    def write(self, data_dir: Path) -> None:
        """Written whole and renamed into place, so a reader never sees half a file."""
        data_dir.mkdir(parents=True, exist_ok=True)
        target = self.path(data_dir)
        partial = target.with_suffix(".json.tmp")
        partial.write_text(self.model_dump_json(indent=2) + "\n")
        partial.replace(target)

    @classmethod
    def read(cls, data_dir: Path) -> StationFile | None:
        """The station described in ``data_dir``; ``None`` if there is none or it is garbled."""
        try:
            return cls.model_validate_json(cls.path(data_dir).read_bytes())
        except (OSError, ValidationError):
            return None

    @classmethod
    def remove(cls, data_dir: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            cls.path(data_dir).unlink()

    def launcher_alive(self) -> bool:
        return pid_alive(self.launcher_pid)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
