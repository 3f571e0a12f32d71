"""``station backup`` and ``station restore``: one file that holds a whole station's data.

A backup is a gzip-compressed tar archive: ``manifest.json`` first, then one file per
database (``<service>.db``, SQLite's own format, or ``<service>.dump``, ``pg_dump``'s custom
format) and the few small files a restored station needs (sync's ``central-token``). The
manifest says what each member is (service, engine, schema revision, size, sha256) and
carries a checksum of itself, so a restore can tell a damaged or edited file from a good one
before it writes anything.

Consistency while the station runs: each SQLite database is copied with SQLite's online
backup API inside one read transaction, so the copy is the database at one commit and the
services go on writing meanwhile (WAL: a reader blocks no writer). The read transactions of
all the databases are opened first, one right after the other, so the databases are taken
within milliseconds of each other; billing's first, so that verification's ledger is never
behind a debit billing counts as settled (a debit billing still has to settle is settled
again after a restore, idempotently by session). ``pg_dump`` likewise dumps each
PostgreSQL database from one snapshot, one database after the other in the same order.

What a restore refuses, each with one line saying why and a non-zero exit: a data directory
that is not empty, a file that is not such an archive or is damaged (truncated, a checksum
that does not match), and a database whose schema revision the installed code does not
know (a backup made by newer software: its migrations cannot run backwards). An older
revision is fine: every service migrates to the newest schema when it starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Literal

from alembic.script import ScriptDirectory
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import URL, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from station_runtime.migrations import make_engine

FORMAT = "station-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SUFFIX = ".tar.gz"
PREFIX = "station-backup-"
PARTIAL = ".partial"
COMPRESS_LEVEL = 1
"""Fastest: on a station's database (measured on billing's, 10,000 sessions) level 1 takes
0.4 of level 6's time for a file 1.25 times its size. A backup shares the station's cores
with the services while it runs, so the shorter the better; storage is cheaper."""
CHUNK = 1 << 20

DATABASE_SERVICES = ("billing", "verification", "faults", "console")
"""The station's services that keep tables, in the order their snapshots are taken.

Central is not among them: it stands for the off-site server (the one-machine station runs
one too), which keeps its own copy; a station's restore must never roll it back. Sync keeps
no tables (it writes billing's outbox, which is in billing's database)."""

SECRET_FILES = ("sync/central-token",)
"""Small files under the data directory a restored station needs: sync's token for central
(installed after a rotation; without it sync would be refused until an operator installs it
again). Kept with mode 0600 in the archive and when restored."""

Engine = Literal["sqlite", "postgresql"]


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why in one line."""


# -- where each service keeps its data ---------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One service's database as the station is configured: its own setting, as the service
    reads it (``STATION_<SERVICE>_DATABASE_URL``), else SQLite in the data directory."""

    service: str
    url: URL

    @property
    def engine(self) -> Engine:
        return "postgresql" if self.url.get_backend_name() == "postgresql" else "sqlite"

    @property
    def version_table(self) -> str:
        """The service's Alembic version table (``ServiceSpec.version_table``)."""
        return f"alembic_version_{self.service}"

    @property
    def member(self) -> str:
        return f"{self.service}.db" if self.engine == "sqlite" else f"{self.service}.dump"

    @property
    def path(self) -> Path:
        assert self.url.database is not None
        return Path(self.url.database)


def sources(data_dir: Path, environ: Mapping[str, str] = os.environ) -> list[Source]:
    """Every station database, as each service would find it."""
    found = []
    for service in DATABASE_SERVICES:
        given = environ.get(f"STATION_{service.upper()}_DATABASE_URL", "")
        if given:
            url = make_url(given)
            if url.get_backend_name() not in ("sqlite", "postgresql"):
                raise BackupError(f"{service}: unsupported database {url.get_backend_name()}")
        else:
            url = make_url(f"sqlite:///{data_dir.resolve() / service / f'{service}.db'}")
        found.append(Source(service, url))
    return found


# -- the manifest ------------------------------------------------------------------------------


class DatabaseEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    service: str
    engine: Engine
    file: str
    size: int
    sha256: str
    revision: str | None
    """The Alembic revision of the service's schema in the copy; ``None`` if never migrated."""


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str
    """Relative to the data directory."""
    size: int
    sha256: str
    mode: int = 0o600


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True)

    format: Literal["station-backup"] = "station-backup"
    format_version: int = FORMAT_VERSION
    station_id: str
    created_at: AwareDatetime
    tool_version: str
    host: str
    databases: list[DatabaseEntry]
    files: list[FileEntry] = Field(default_factory=list)
    checksum: str = ""
    """sha256 of this manifest's canonical JSON without the checksum itself."""

    def body(self) -> bytes:
        fields = self.model_dump(mode="json", exclude={"checksum"})
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def sealed(self) -> Manifest:
        return self.model_copy(update={"checksum": hashlib.sha256(self.body()).hexdigest()})

    def intact(self) -> bool:
        return self.checksum == hashlib.sha256(self.body()).hexdigest()


def tool_version() -> str:
    try:
        return version("station-tools")
    except PackageNotFoundError:
        return "unknown"


# -- taking the copies -------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _sqlite_readers(found: Sequence[Source]) -> Iterator[dict[str, sqlite3.Connection]]:
    """A read transaction on every SQLite database, opened one right after the other: the
    copies taken through them are the databases as of (almost) one moment."""
    readers: dict[str, sqlite3.Connection] = {}
    try:
        for source in found:
            if source.engine != "sqlite":
                continue
            if not source.path.is_file():
                raise BackupError(
                    f"no database of {source.service} at {source.path}: is this a station's "
                    "data directory (has the station run here)?"
                )
            connection = sqlite3.connect(source.path, timeout=30, isolation_level=None)
            readers[source.service] = connection
            connection.execute("BEGIN")
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        yield readers
    finally:
        for connection in readers.values():
            connection.close()


def _copy_sqlite(reader: sqlite3.Connection, target: Path) -> None:
    """The whole database in one step of the online backup API, inside the reader's open
    transaction; the copy is turned out of WAL mode, so it is one self-contained file."""
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        reader.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


def _sqlite_revision(path: Path, table: str) -> str | None:
    connection = sqlite3.connect(path)
    try:
        row = connection.execute(f'SELECT version_num FROM "{table}"').fetchone()
    except sqlite3.OperationalError:
        return None
    finally:
        connection.close()
    return str(row[0]) if row else None


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """``url`` for ``pg_dump``/``pg_restore`` (no driver suffix) with its password moved to
    ``PGPASSWORD``, so that it never shows in the process list."""
    plain = url.set(drivername="postgresql", password=None)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    return plain.render_as_string(hide_password=False), env


def _pg_program(name: str) -> str:
    """``pg_dump``/``pg_restore``: in ``$STATION_POSTGRES_BIN``, else on the PATH."""
    configured = os.environ.get("STATION_POSTGRES_BIN")
    candidate = Path(configured) / name if configured else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (apt-get install -y postgresql-client)")
    return found


def _pg_revision(url: URL, table: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            row = connection.execute(text(f'SELECT version_num FROM "{table}"')).first()
    except SQLAlchemyError as exc:
        if "does not exist" in str(exc):
            return None
        raise BackupError(f"cannot read {table}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return str(row[0]) if row else None


def _dump_postgres(source: Source, target: Path) -> str | None:
    """``pg_dump --format=custom`` (one snapshot of the database); the revision is read
    before and after, and a migration in between (a service started new code) refuses."""
    before = _pg_revision(source.url, source.version_table)
    uri, env = _libpq(source.url)
    done = subprocess.run(
        [_pg_program("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), uri],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump of {source.service} failed: {_first_line(done.stderr)}")
    after = _pg_revision(source.url, source.version_table)
    if before != after:
        raise BackupError(f"{source.service} migrated during the backup; take it again")
    return after


def _first_line(text_: str) -> str:
    lines = [line for line in text_.splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


@dataclass(frozen=True)
class Taken:
    """What one backup wrote."""

    path: Path
    manifest: Manifest
    seconds: float

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def backup(
    data_dir: Path,
    out: Path,
    *,
    station_id: str | None = None,
    environ: Mapping[str, str] = os.environ,
    clock: Callable[[], datetime] | None = None,
) -> Taken:
    """Write the backup of the station in ``data_dir`` to ``out`` (renamed into place whole,
    so that a file under the final name is always complete)."""
    started = time.monotonic()
    now: datetime = clock() if clock is not None else datetime.now(UTC)
    found = sources(data_dir, environ)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=out.parent) as work_dir:
        work = Path(work_dir)
        databases = _take(found, work)
        files = _secret_files(data_dir, work)
        manifest = Manifest(
            station_id=station_id or _station_id(environ),
            created_at=now,
            tool_version=tool_version(),
            host=socket.gethostname(),
            databases=databases,
            files=files,
        ).sealed()
        partial = out.with_name(out.name + PARTIAL)
        _write_archive(partial, manifest, work)
        partial.replace(out)
    return Taken(out, manifest, time.monotonic() - started)


def _station_id(environ: Mapping[str, str]) -> str:
    return environ.get("STATION_BILLING_STATION_ID") or "station-1"


def _take(found: Sequence[Source], work: Path) -> list[DatabaseEntry]:
    entries = []
    with _sqlite_readers(found) as readers:
        for source in found:
            target = work / source.member
            if source.engine == "sqlite":
                _copy_sqlite(readers[source.service], target)
                revision = _sqlite_revision(target, source.version_table)
            else:
                revision = _dump_postgres(source, target)
            entries.append(
                DatabaseEntry(
                    service=source.service,
                    engine=source.engine,
                    file=source.member,
                    size=target.stat().st_size,
                    sha256=sha256_of(target),
                    revision=revision,
                )
            )
    return entries


def _secret_files(data_dir: Path, work: Path) -> list[FileEntry]:
    entries = []
    for name in SECRET_FILES:
        source = data_dir / name
        if not source.is_file():
            continue
        target = work / "files" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o600)
        entries.append(FileEntry(path=name, size=target.stat().st_size, sha256=sha256_of(target)))
    return entries


def _write_archive(path: Path, manifest: Manifest, work: Path) -> None:
    """The manifest first (a restore reads it before anything else), then the members."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with (
        os.fdopen(fd, "wb") as raw,
        tarfile.open(fileobj=raw, mode="w:gz", compresslevel=COMPRESS_LEVEL) as archive,
    ):
        body = manifest.model_dump_json(indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(body)
        info.mtime = int(manifest.created_at.timestamp())
        info.mode = 0o600
        archive.addfile(info, io.BytesIO(body))
        for entry in manifest.databases:
            archive.add(work / entry.file, arcname=entry.file, recursive=False, filter=_private)
        for file in manifest.files:
            archive.add(work / "files" / file.path, arcname=f"files/{file.path}", filter=_private)
    with open(path, "rb") as synced:
        os.fsync(synced.fileno())


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Card holders and tokens: nobody but the owner reads a member, whoever restores it."""
    info.mode = 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# -- the schedule's bookkeeping -----------------------------------------------------------------


def archive_name(station_id: str, at: datetime) -> str:
    """``station-backup-<station>-<UTC time>.tar.gz``: names sort in time order."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{PREFIX}{station_id}-{stamp}{SUFFIX}"


def backup_into(
    data_dir: Path,
    out_dir: Path,
    keep: int,
    *,
    station_id: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> tuple[Taken, list[Path]]:
    """A backup into ``out_dir`` under a dated name, then all but the newest ``keep`` of the
    station's backups there deleted; returns the backup and what was deleted."""
    station = station_id or _station_id(environ)
    now = datetime.now(UTC)
    taken = backup(
        data_dir,
        out_dir / archive_name(station, now),
        station_id=station,
        environ=environ,
        clock=lambda: now,
    )
    return taken, prune(out_dir, station, keep)


def prune(out_dir: Path, station_id: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete backups of ``station_id`` in ``out_dir``,
    and any partial file a backup that died left behind."""
    if keep < 1:
        raise BackupError("keep at least one backup")
    pattern = re.compile(re.escape(f"{PREFIX}{station_id}-") + r"\d{8}T\d{6}Z" + re.escape(SUFFIX))
    complete = sorted(p for p in out_dir.iterdir() if pattern.fullmatch(p.name))
    stale = [p for p in out_dir.iterdir() if p.name.endswith(SUFFIX + PARTIAL)]
    newest = max((p.stat().st_mtime for p in complete), default=0.0)
    doomed = complete[:-keep] + [p for p in stale if p.stat().st_mtime < newest]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


# -- reading and restoring ---------------------------------------------------------------------


def migrations_folder(service: str) -> Path:
    """The installed service's Alembic folder, found without importing the service."""
    spec = importlib.util.find_spec(f"station_{service}")
    if spec is None or not spec.submodule_search_locations:
        raise BackupError(f"station_{service} is not installed: cannot check its schema")
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


def known_revisions(service: str) -> set[str]:
    """Every revision the installed code's migrations of ``service`` know: a backup at any
    of them is migrated forward when the service starts."""
    script = ScriptDirectory(str(migrations_folder(service)))
    return {revision.revision for revision in script.walk_revisions()}


def read_manifest(archive: Path) -> Manifest:
    """The archive's manifest, checked: refuses what is no backup or a damaged one."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            member = tar.next()
            if member is None or member.name != MANIFEST:
                raise BackupError(f"{archive} is not a station backup (no manifest first)")
            handle = tar.extractfile(member)
            assert handle is not None
            raw = handle.read()
    except FileNotFoundError:
        raise BackupError(f"{archive} does not exist") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"{archive} is not a readable station backup: {exc}") from None
    try:
        manifest = Manifest.model_validate_json(raw)
    except ValidationError:
        raise BackupError(f"{archive} is not a station backup (unreadable manifest)") from None
    if not manifest.intact():
        raise BackupError(f"{archive} is damaged: its manifest does not match its checksum")
    if manifest.format_version > FORMAT_VERSION:
        raise BackupError(
            f"{archive} is backup format {manifest.format_version}; this station reads "
            f"{FORMAT_VERSION}: restore it with newer software"
        )
    return manifest


def check_schemas(manifest: Manifest) -> None:
    """Refuse a database newer than the installed code (its migrations only go forward)."""
    for entry in manifest.databases:
        if entry.revision is not None and entry.revision not in known_revisions(entry.service):
            raise BackupError(
                f"{entry.service}'s database in the backup is at schema revision "
                f"{entry.revision}, which this software does not know (the backup was made by "
                f"newer software, {manifest.tool_version}): restore it with that version or a "
                "newer one"
            )


def verify(archive: Path) -> Manifest:
    """Read the whole archive and check every member against the manifest (no writes)."""
    with tempfile.TemporaryDirectory(prefix=".verify-") as scratch:
        return _unpack(archive, Path(scratch))


def _unpack(archive: Path, into: Path) -> Manifest:
    manifest = read_manifest(archive)
    check_schemas(manifest)
    _check_names(archive, manifest)
    expected = {e.file: (e.size, e.sha256) for e in manifest.databases}
    expected |= {f"files/{f.path}": (f.size, f.sha256) for f in manifest.files}
    seen: set[str] = set()
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                if member.name == MANIFEST:
                    continue
                if member.name not in expected or not member.isfile():
                    raise BackupError(f"{archive} is damaged: unexpected member {member.name}")
                _extract(tar, member, into / member.name, *expected[member.name], archive)
                seen.add(member.name)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(f"{archive} is damaged (truncated or corrupted): {exc}") from None
    missing = sorted(set(expected) - seen)
    if missing:
        raise BackupError(f"{archive} is damaged: {', '.join(missing)} missing")
    return manifest


def _check_names(archive: Path, manifest: Manifest) -> None:
    """Only the members a station has, under their own names: a manifest can be re-sealed
    by anyone, so no path in it may point outside the data directory."""
    for entry in manifest.databases:
        wanted = f"{entry.service}.{'db' if entry.engine == 'sqlite' else 'dump'}"
        if entry.service not in DATABASE_SERVICES or entry.file != wanted:
            raise BackupError(f"{archive} is not a station backup: unknown member {entry.file}")
    for file in manifest.files:
        if file.path not in SECRET_FILES:
            raise BackupError(f"{archive} is not a station backup: unknown file {file.path}")


def _extract(
    tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, size: int, sha: str, name: Path
) -> None:
    source = tar.extractfile(member)
    assert source is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            written += len(chunk)
            out.write(chunk)
    if written != size or digest.hexdigest() != sha:
        raise BackupError(f"{name} is damaged: {member.name} does not match its checksum")


def restore(archive: Path, data_dir: Path, *, environ: Mapping[str, str] = os.environ) -> Manifest:
    """Restore ``archive`` into the empty ``data_dir`` (and into the PostgreSQL databases the
    environment names, which must be empty too). Everything is checked before anything is
    written: a refused restore leaves the data directory as it was."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new or empty data directory")
    targets = {source.service: source for source in sources(data_dir, environ)}
    created = not data_dir.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=data_dir) as scratch:
            staging = Path(scratch)
            manifest = _unpack(archive, staging)
            _check_targets(manifest, targets)
            for entry in manifest.databases:
                _place_database(staging / entry.file, targets[entry.service], entry)
            for file in manifest.files:
                target = data_dir / file.path
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / "files" / file.path, target)
                target.chmod(file.mode)
    except BaseException:
        _undo(data_dir, created)
        raise
    return manifest


def _check_targets(manifest: Manifest, targets: Mapping[str, Source]) -> None:
    for entry in manifest.databases:
        target = targets.get(entry.service)
        if target is None:
            raise BackupError(f"this software has no {entry.service} database to restore into")
        if target.engine != entry.engine:
            raise BackupError(
                f"{entry.service}'s backup is {entry.engine} but its database here is "
                f"{target.engine}: restore into the same kind of database"
            )
        if target.engine == "postgresql" and _pg_has_tables(target.url):
            raise BackupError(
                f"{entry.service}'s database {target.url.database} is not empty: restore "
                "into an empty one"
            )


def _pg_has_tables(url: URL) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            count = connection.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
                )
            ).scalar_one()
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot reach {url.database}: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()
    return bool(count)


def _place_database(copy: Path, target: Source, entry: DatabaseEntry) -> None:
    if target.engine == "sqlite":
        target.path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(copy, target.path)
        target.path.chmod(0o600)
        return
    uri, env = _libpq(target.url)
    program = _pg_program("pg_restore")
    listing = subprocess.run(
        [program, "--list", str(copy)], env=env, capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise BackupError(f"pg_restore cannot read {entry.file}: {_first_line(listing.stderr)}")
    toc = copy.with_suffix(".toc")
    toc.write_text("\n".join(_service_objects(listing.stdout.splitlines())) + "\n")
    done = subprocess.run(
        [
            program,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--use-list={toc}",
            "--dbname",
            uri,
            str(copy),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore of {entry.service} failed: {_first_line(done.stderr)}")


def _service_objects(toc: Sequence[str]) -> list[str]:
    """The dump's table of contents without what the database setup owns, not the service:
    event triggers and their functions (the chart's grant to sync), which the empty target
    database has already and its role may not create. The services define no functions."""
    return [line for line in toc if not re.search(r"\b(EVENT TRIGGER|FUNCTION)\b", line)]


def _undo(data_dir: Path, created: bool) -> None:
    """A failed restore leaves no half station behind (the directory was empty before)."""
    if created:
        shutil.rmtree(data_dir, ignore_errors=True)
        return
    for child in data_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def describe(manifest: Manifest) -> str:
    """One line per database, for the user."""
    return "\n".join(
        f"  {e.service:<14}{e.engine:<12}revision {e.revision or '-':<10}{human_size(e.size)}"
        for e in manifest.databases
    )


def parse_duration(text_: str) -> float:
    """``90``, ``90s``, ``30m``, ``1h``, ``2d`` -> seconds (for ``--backup-every``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text_)
    if match is None:
        raise ValueError(f"not a duration: {text_!r} (like 90s, 30m, 1h, 1d)")
    number, unit = match.groups()
    return float(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


@dataclass
class Schedule:
    """``station up --backup-every``: a backup every ``every`` seconds into ``out_dir``,
    keeping the newest ``keep``. Each runs in a thread of its own, so the launcher goes on
    watching the station meanwhile; a failed backup is said and tried again next time, it
    never stops the station."""

    data_dir: Path
    out_dir: Path
    every: float
    keep: int
    say: Callable[[str], None]
    complain: Callable[[str], None]
    station_id: str | None = None
    next_at: float = 0.0
    running: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.next_at = time.monotonic() + self.every

    def tick(self) -> None:
        """Start the next backup if it is due and the last one is done."""
        now = time.monotonic()
        if now < self.next_at or (self.running is not None and self.running.is_alive()):
            return
        self.next_at = now + self.every
        self.running = threading.Thread(target=self._take, name="station-backup", daemon=True)
        self.running.start()

    def _take(self) -> None:
        try:
            taken, deleted = backup_into(
                self.data_dir, self.out_dir, self.keep, station_id=self.station_id
            )
        except (BackupError, OSError, sqlite3.Error) as exc:
            self.complain(f"station up: backup failed (tried again in {self.every:g} s): {exc}")
            return
        gone = f", {len(deleted)} older deleted" if deleted else ""
        self.say(f"Backup: {taken.path} ({human_size(taken.size)}, {taken.seconds:.1f} s{gone})")

    def wait(self, timeout: float) -> None:
        """Let a backup under way finish (the station stops): a file is whole or absent."""
        if self.running is not None:
            self.running.join(timeout)
