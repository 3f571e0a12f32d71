"""Failover as a command: promote the standby, re-join the old primary, apply the mode.

``station-central failover`` promotes central's standby once its primary is gone;
``station-central rejoin --pgdata DIR`` turns the old primary's data directory into a
standby of the new primary (``pg_rewind``, else a fresh ``pg_basebackup``);
``station-central replication`` sets ``synchronous_standby_names`` on the primary for the
configured mode. Each works with the servers of ``STATION_CENTRAL_DATABASE_HOSTS`` (or the
one of the database URL) as the admin role, over SQL, so that it works the same on one
machine and in a cluster (``kubectl exec`` into central's pod).

Central itself follows the promoted server without a restart: it connects to whichever
host accepts writes. Promoting a standby while the old primary still accepts writes would
give central two primaries, so ``failover`` refuses while a primary answers: stop it (or
make sure it is gone) first.

Synchronous mode with no standby either blocks every commit or degrades to one copy.
Central degrades: ``failover`` leaves the new primary asynchronous (a station's sync would
otherwise wait, and its outbox grow, until a standby returns), the
``CentralReplicationNotSynchronous`` alert says so, and ``replication`` (or ``rejoin
--wait``) makes it synchronous again as soon as the re-joined standby streams.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from sqlalchemy import URL

from station_central.core.config import Replication, Settings

Role = Literal["primary", "standby", "down"]
CONNECT_SECONDS = 3
POLL_SECONDS = 0.1
APPLICATION = "station-central-admin"


class FailoverError(Exception):
    """The command cannot do what was asked; the message says why and what to do."""


@dataclass(frozen=True)
class Server:
    """One database host as the command found it."""

    address: str
    role: Role
    lsn: str | None = None
    """The last WAL position it wrote (primary) or received (standby)."""
    error: str | None = None


@dataclass(frozen=True)
class Cluster:
    """Where central's servers are and who the command is on them."""

    addresses: tuple[str, ...]
    url: URL

    @classmethod
    def of(cls, settings: Settings) -> Cluster:
        url = settings.admin_database_url or settings.database_url
        if url is None or url.get_backend_name() != "postgresql":
            raise FailoverError("failover needs PostgreSQL: set STATION_CENTRAL_DATABASE_URL")
        addresses = settings.database_hosts or (f"{url.host or 'localhost'}:{url.port or 5432}",)
        return cls(addresses, url)

    def conninfo(self, address: str, **extra: str) -> str:
        """A libpq connection string for one host, without the password (it goes by env)."""
        host, _, port = address.rpartition(":")
        return make_conninfo(
            host=host,
            port=port,
            user=self.url.username or "postgres",
            dbname=self.url.database or "postgres",
            **extra,
        )

    def env(self) -> dict[str, str]:
        """The environment for PostgreSQL's own programs: the password as ``PGPASSWORD``."""
        password = self.url.password
        return {**os.environ, "PGPASSWORD": str(password)} if password else dict(os.environ)

    @contextlib.contextmanager
    def connect(self, address: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        password = self.url.password
        with psycopg.connect(
            self.conninfo(address, application_name=APPLICATION),
            password=None if password is None else str(password),
            connect_timeout=CONNECT_SECONDS,
            autocommit=True,
        ) as connection:
            yield connection

    def probe(self, address: str) -> Server:
        try:
            with self.connect(address) as connection:
                row = connection.execute(
                    "SELECT pg_is_in_recovery(),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()"
                    " ELSE pg_current_wal_lsn() END::text"
                ).fetchone()
        except psycopg.Error as exc:
            return Server(address, "down", error=str(exc).strip().splitlines()[0][:200])
        assert row is not None
        return Server(address, "standby" if row[0] else "primary", lsn=row[1])

    def servers(self) -> list[Server]:
        return [self.probe(address) for address in self.addresses]

    def primary(self) -> Server:
        primaries = [s for s in self.servers() if s.role == "primary"]
        if len(primaries) != 1:
            raise FailoverError(f"expected one primary among {self.addresses}, found {primaries}")
        return primaries[0]


def failover(settings: Settings, timeout: float) -> dict[str, Any]:
    """Promote the standby that received the most WAL; wait until it takes writes."""
    cluster = Cluster.of(settings)
    found = cluster.servers()
    alive = [s.address for s in found if s.role == "primary"]
    if alive:
        raise FailoverError(
            f"a primary still accepts writes at {', '.join(alive)}: promoting now would give "
            "central two primaries. Stop it first (or use it: nothing to fail over)."
        )
    standbys = [s for s in found if s.role == "standby"]
    if not standbys:
        raise FailoverError(f"no standby answers among {cluster.addresses}: {found}")
    target = max(standbys, key=lambda s: _lsn(s.lsn))
    started = time.monotonic()
    with cluster.connect(target.address) as connection:
        promoted = connection.execute(
            "SELECT pg_promote(true, %s)", (max(1, int(timeout)),)
        ).fetchone()
        if promoted is None or not promoted[0]:
            raise FailoverError(f"{target.address} did not finish promotion within {timeout} s")
        _wait_writable(connection, timeout)
        _checkpoint(connection)
        # Alone now: never wait for a standby that is not there (see the module's note).
        _set_standby_names(connection, "")
        lsn = connection.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    return {
        "promoted": target.address,
        "received_lsn": target.lsn,
        "lsn": lsn[0] if lsn else None,
        "seconds": round(time.monotonic() - started, 3),
        "replication": settings.replication.value,
        "synchronous_standby_names": "",
        "servers": [asdict(s) for s in found],
        "next": "bring the old primary back as a standby: station-central rejoin --pgdata DIR",
    }


def _lsn(text: str | None) -> int:
    if not text:
        return -1
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def _wait_writable(connection: psycopg.Connection[tuple[Any, ...]], timeout: float) -> None:
    """Until a transaction id can be assigned: the server takes writes, not just answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.execute("SELECT txid_current()")
            return
        except psycopg.errors.ReadOnlySqlTransaction:
            if time.monotonic() > deadline:
                raise FailoverError("the promoted server still refuses writes") from None
            time.sleep(POLL_SECONDS)


def _checkpoint(connection: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Write the new timeline into the control file at once: ``pg_rewind`` reads the
    source's timeline there, and before this checkpoint it would take the promoted server
    for one still on the old timeline, find nothing to rewind, and leave the old primary
    unable to follow. Needs superuser or ``pg_checkpoint``; ``rejoin`` does it again."""
    connection.execute("CHECKPOINT")


def _set_standby_names(connection: psycopg.Connection[tuple[Any, ...]], names: str) -> None:
    connection.execute(
        sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(sql.Literal(names))
    )
    connection.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the reload is asynchronous: wait until it is seen
        row = connection.execute("SHOW synchronous_standby_names").fetchone()
        if row is not None and row[0] == names:
            return
        time.sleep(POLL_SECONDS)
    raise FailoverError(f"synchronous_standby_names is not {names!r} after the reload")


def apply_replication(settings: Settings, wait: float) -> dict[str, Any]:
    """Set ``synchronous_standby_names`` on the primary for the configured mode.

    ``sync``: the standby (``standby_name``) is listed once it streams, waiting up to
    ``wait`` seconds for it; if it does not come, the primary stays asynchronous (degraded).
    ``async``: nothing is listed.
    """
    cluster = Cluster.of(settings)
    primary = cluster.primary()
    with cluster.connect(primary.address) as connection:
        streaming = _wait_streaming(connection, settings.standby_name, wait)
        sync = settings.replication is Replication.SYNC
        names = f'"{settings.standby_name}"' if sync and streaming else ""
        _set_standby_names(connection, names)
        states = connection.execute(
            "SELECT application_name, state, sync_state FROM pg_stat_replication"
        ).fetchall()
    return {
        "primary": primary.address,
        "replication": settings.replication.value,
        "standby_streaming": streaming,
        "synchronous_standby_names": names,
        "degraded": sync and not streaming,
        "standbys": [{"name": n, "state": s, "sync_state": y} for n, s, y in states],
    }


def _wait_streaming(
    connection: psycopg.Connection[tuple[Any, ...]], name: str, wait: float
) -> bool:
    deadline = time.monotonic() + wait
    while True:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_replication"
            " WHERE application_name = %s AND state = 'streaming'",
            (name,),
        ).fetchone()
        if row is not None and row[0] > 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)


def rejoin(
    settings: Settings, pgdata: Path, bindir: Path | None, basebackup: bool
) -> dict[str, Any]:
    """Make the stopped old primary in ``pgdata`` a standby of the current primary.

    ``pg_rewind`` first (fast: it copies only what changed since the timelines forked; the
    old primary needs ``wal_log_hints = on`` or data checksums, and the new primary the WAL
    since the fork); when it cannot, the old data directory is moved aside to
    ``<pgdata>.before-rejoin`` and replaced by a fresh ``pg_basebackup``. Then the
    directory is a standby (``standby.signal``) that streams from the primary as
    ``standby_name``. The caller starts the server; ``replication --wait`` makes the primary
    synchronous again in ``sync`` mode.
    """
    cluster = Cluster.of(settings)
    primary = cluster.primary()
    if _running(pgdata):
        raise FailoverError(f"a server still runs on {pgdata}: stop it before re-joining it")
    programs = bindir or _postgres_bin()
    source = cluster.conninfo(primary.address)
    with cluster.connect(primary.address) as connection:
        _checkpoint(connection)
    method, error = "rewind", None
    if basebackup:
        method = "basebackup"
    else:
        try:
            _run(programs / "pg_rewind", ["-D", str(pgdata), "--source-server", source],
                 pgdata, cluster)  # fmt: skip
        except FailoverError as exc:
            method, error = "basebackup", str(exc)
    if method == "basebackup":
        _fresh_copy(programs, pgdata, primary.address, cluster)
    _follow(pgdata, cluster, primary.address, settings)
    return {
        "primary": primary.address,
        "pgdata": str(pgdata),
        "method": method,
        "rewind_error": error,
        "next": "start the server on this directory, then: station-central replication --wait 60",
    }


def _fresh_copy(programs: Path, pgdata: Path, address: str, cluster: Cluster) -> None:
    aside = pgdata.with_name(pgdata.name + ".before-rejoin")
    shutil.rmtree(aside, ignore_errors=True)
    owner = pgdata.stat()
    pgdata.rename(aside)
    host, _, port = address.rpartition(":")
    user = cluster.url.username or "postgres"
    arguments = ["-D", str(pgdata), "-h", host, "-p", port, "-U", user, "-X", "stream"]
    _run(programs / "pg_basebackup", [*arguments, "-c", "fast", "-w"], aside, cluster)
    os.chown(pgdata, owner.st_uid, owner.st_gid)


def _follow(pgdata: Path, cluster: Cluster, address: str, settings: Settings) -> None:
    """``standby.signal`` and a ``primary_conninfo`` naming the standby (no password)."""
    host, _, port = address.rpartition(":")
    user = settings.replication_user or cluster.url.username or "postgres"
    name = settings.standby_name
    conninfo = make_conninfo(host=host, port=port, user=user, application_name=name)
    auto = pgdata / "postgresql.auto.conf"
    kept = [
        line
        for line in (auto.read_text().splitlines() if auto.exists() else [])
        if not line.startswith(("primary_conninfo", "primary_slot_name"))
    ]
    quoted = conninfo.replace("'", "''")
    auto.write_text("\n".join([*kept, f"primary_conninfo = '{quoted}'"]) + "\n")
    signal = pgdata / "standby.signal"
    signal.touch()
    owner = pgdata.stat()
    for path in (auto, signal):
        os.chown(path, owner.st_uid, owner.st_gid)


def _running(pgdata: Path) -> bool:
    """A live postmaster holds ``postmaster.pid``; one killed leaves it behind, stale."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _run(program: Path, arguments: list[str], owned: Path, cluster: Cluster) -> None:
    """Run a PostgreSQL program as the data directory's owner (it refuses to run as root)."""
    owner = owned.stat()
    drop: dict[str, Any] = {}
    if os.geteuid() == 0 and owner.st_uid != 0:
        drop = {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}
    result = subprocess.run(
        [str(program), *arguments],
        capture_output=True,
        text=True,
        env=cluster.env(),
        cwd=owned.parent,
        check=False,
        **drop,
    )
    if result.returncode != 0:
        raise FailoverError(f"{program.name} failed: {result.stderr.strip()[-600:]}")


def _postgres_bin() -> Path:
    """Where ``pg_rewind`` is: on the PATH, else the newest Debian PostgreSQL."""
    found = shutil.which("pg_rewind")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_rewind"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise FailoverError("pg_rewind not found: give --pg-bin")
    return versions[-1].parent
