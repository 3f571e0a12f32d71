"""A private PostgreSQL run as a child process, with a streaming standby on demand.

Why our own server and not the machine's: tests kill, stop, restart and promote it, and a
test run must never touch a database somebody else uses. ``Postgres().start()`` makes a
fresh cluster (initdb) in a temporary folder and serves it on a free loopback port;
``standby()`` clones it with ``pg_basebackup -R`` into a hot standby on another port, which
is how the central server's backup copy works in production (streaming replication).

PostgreSQL refuses to run as root: when the caller is root, every PostgreSQL program runs
as the ``postgres`` user (``Popen(user=...)``, no ``su`` in between, so the process we hold
is the postmaster itself and ``kill`` really is ``kill -9`` of the server).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from station_tools import children
from station_tools.ports import free_port

SUPERUSER = "postgres"
SYSTEM_USER = "postgres"
"""The operating-system user PostgreSQL runs as when we are root."""


def postgres_bin() -> Path:
    """The folder with initdb and postgres: ``$STATION_POSTGRES_BIN`` or the newest Debian one."""
    configured = os.environ.get("STATION_POSTGRES_BIN")
    if configured:
        return Path(configured)
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise FileNotFoundError("PostgreSQL is not installed (apt-get install -y postgresql)")


def _as_server_user() -> dict[str, Any]:
    """``Popen`` arguments that drop root to the postgres user (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": SYSTEM_USER, "group": SYSTEM_USER, "extra_groups": []}


def _own_dir(prefix: str) -> Path:
    """A fresh folder the server user owns (pytest's own tmp folders are root-only)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
    return path


TEST_SETTINGS = {"fsync": "off", "full_page_writes": "off"}
"""For tests: no disk flushes (a crash of the machine may lose data; a kill -9 does not)."""


@dataclass
class Postgres(children.Started):
    """``with Postgres() as db``: a private cluster on a free loopback port.

    ``settings`` go into ``postgresql.conf`` (pass :data:`TEST_SETTINGS` in tests).
    """

    port: int = field(default_factory=free_port)
    settings: dict[str, str] = field(default_factory=dict)
    base_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    primary: Postgres | None = None
    """For a standby: the server it streams from."""
    _owns_dir: bool = False

    @property
    def dir(self) -> Path:
        if self.base_dir is None:
            self.base_dir = _own_dir("station-postgres-")
            self._owns_dir = True
        return self.base_dir

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_file(self) -> Path:
        return self.dir / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy/libpq URL of ``database`` as the superuser (trust auth on loopback)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def is_standby(self) -> bool:
        return (self.data_dir / "standby.signal").exists()

    def start(self) -> Postgres:
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._launch()
        return self

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        lines = [
            "wal_level = replica",
            "max_wal_senders = 10",
            "hot_standby = on",
            "max_connections = 100",
            *(f"{name} = '{value}'" for name, value in self.settings.items()),
        ]
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# station_tools.postgres\n" + "\n".join(lines) + "\n")

    def _launch(self) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(postgres_bin() / "postgres"),
                    "-D",
                    str(self.data_dir),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.dir),
                    "-c",
                    "listen_addresses=127.0.0.1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,
                **_as_server_user(),
            )
        self.wait_ready(30)

    def wait_ready(self, timeout: float) -> None:
        """Until the server accepts queries (a listening socket alone may still refuse them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.tail_log()}")
            ready = subprocess.run(
                [
                    str(postgres_bin() / "pg_isready"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-U",
                    SUPERUSER,
                    "-t",
                    "1",
                ],
                capture_output=True,
                check=False,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.05)
        raise TimeoutError(f"postgres not ready on {self.port}: {self.tail_log()}")

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _run(self, program: str, *args: str) -> str:
        result: subprocess.CompletedProcess[bytes] = subprocess.run(
            [str(postgres_bin() / program), *args],
            capture_output=True,
            cwd=self.dir,
            check=False,
            **_as_server_user(),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        return result.stdout.decode()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` and return its rows as ``psql -At`` prints them (``|`` between columns)."""
        return self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
            "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-c", sql,
        ).strip()  # fmt: skip

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): clients are disconnected, everything committed is kept."""
        if self.process is None:
            return
        children.terminate(self.process, 15, signal.SIGINT)
        self.process = None

    def kill(self) -> None:
        """kill -9 of the server and its backends: a crash; the next start recovers from WAL."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self._launch()

    def standby(self, port: int | None = None, name: str = "standby") -> Postgres:
        """A hot standby streaming from this server, started on ``port`` (default: a free one).

        ``pg_basebackup -R`` copies the cluster and writes ``standby.signal`` and the
        connection to this server, so every commit here reaches the standby within
        milliseconds. It streams as ``name`` (its ``application_name``), the name
        ``synchronous_standby_names`` lists for synchronous replication. The caller owns it
        (``close()`` it).
        """
        replica = Postgres(
            port=port if port is not None else free_port(),
            settings=self.settings,
            primary=self,
        )
        replica._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-D",
            str(replica.data_dir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        conninfo = f"host=127.0.0.1 port={self.port} user={SUPERUSER} application_name={name}"
        with (replica.data_dir / "postgresql.auto.conf").open("a") as auto:
            auto.write(f"primary_conninfo = '{conninfo}'\n")
        replica._launch()
        return replica

    def promote(self) -> None:
        """Make this standby a primary (fail over); it then accepts writes."""
        self._run("pg_ctl", "-D", str(self.data_dir), "promote", "-w", "-t", "30")

    def close(self) -> None:
        self.stop()
        if self._owns_dir and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            self.base_dir = None
