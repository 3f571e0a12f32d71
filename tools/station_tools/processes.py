"""Services run as real child processes: how ``station up`` and the tests start them.

A service is ``python -m <module>`` configured by environment variables (its
pydantic-settings prefix), exactly as a container runs it, so that tests can kill -9, stop
and restart it like an operator or a fault would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from station_tools import children
from station_tools.ports import free_port


@dataclass
class ServiceProcess(children.Started):
    """One service process; ``health_url`` is polled until it answers 200."""

    name: str
    module: str
    env: dict[str, str]
    log_dir: Path
    health_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: object = field(default=None, repr=False)

    @classmethod
    def station_service(
        cls,
        service: str,
        *,
        broker: str,
        work: Path,
        port: int | None = None,
        data_dir: Path | None = None,
        own_client_id: bool = True,
        **settings: str,
    ) -> ServiceProcess:
        """A station service configured by its environment as a container is: on ``port``
        (a free one by default), data in ``data_dir`` (``work/<service>``), logs in
        ``work/logs``. ``own_client_id``: a client id of its own, so that it never takes
        over the connection of another instance on a shared broker.

        Healthy means ready (subscribed on the broker), so that a request sent next finds
        it listening.
        """
        port = port if port is not None else free_port()
        prefix = f"STATION_{service.upper()}_"
        given = {
            "broker": broker,
            "port": str(port),
            "data_dir": str((data_dir or work / service).resolve()),
        }
        if own_client_id:
            given["client_id"] = f"{service}-{uuid.uuid4().hex[:8]}"
        return cls(
            name=service,
            module=f"station_{service}",
            env={f"{prefix}{key.upper()}": value for key, value in {**given, **settings}.items()},
            log_dir=work / "logs",
            health_url=f"http://127.0.0.1:{port}/ready",
        )

    @property
    def base_url(self) -> str:
        """The service's HTTP root."""
        assert self.health_url is not None
        return self.health_url.rsplit("/", 1)[0]

    @property
    def log_file(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, wait: float = 30.0) -> ServiceProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_file.open("ab")
        try:
            with children.spawning():
                self.process = subprocess.Popen(
                    [sys.executable, "-m", self.module],
                    env={**os.environ, **self.env},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        finally:
            log.close()
        self.starts += 1
        if wait and self.health_url:
            self.wait_healthy(wait)
        return self

    def wait_healthy(self, timeout: float) -> None:
        assert self.health_url is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail_log()}"
                )
            try:
                response = httpx.get(self.health_url, timeout=0.5)
                if response.status_code == 200 and self._answered_by_ours(response):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not healthy after {timeout} s: {self.tail_log()}")

    def _answered_by_ours(self, response: httpx.Response) -> bool:
        """Not some other process that holds the port (ours then fails to bind and exits)."""
        body = response.json()
        pid = body.get("pid") if isinstance(body, dict) else None
        return pid is None or self.process is None or pid == self.process.pid

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, as Kubernetes and Ctrl-C do; SIGKILL if it does not go."""
        if self.process is None:
            return
        children.terminate(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """kill -9: no goodbye, no last words but the broker's last will."""
        if self.process is not None:
            children.kill(self.process)
            self.process = None

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None:
            self.process.send_signal(sig)

    def restart(self, wait: float = 30.0) -> None:
        self.stop()
        self.start(wait)

    def close(self) -> None:
        """Stop it, waking it first if a test froze it (SIGSTOP)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        self.stop()
