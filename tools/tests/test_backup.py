"""``station backup`` / ``station restore`` on real databases, without a running station.

The station's databases are made here as the services make them (each service's own Alembic
migrations, its own version table) and filled through billing's outbox writer, so the backup
reads what it reads on a station.
"""

from __future__ import annotations

import gzip
import io
import sqlite3
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from station_runtime.migrations import make_engine, migrate
from station_runtime.outbox import billing_outbox
from station_tools import backup as backups
from station_tools.cli import build_parser, main
from station_tools.postgres import TEST_SETTINGS, Postgres
from station_tools.records import queue_records, sample_record

TOKEN = "stn_restored-token-of-station-1_abcdefghijkl"


def migrated(url: str, service: str) -> Engine:
    engine = make_engine(url)
    folder = backups.migrations_folder(service)
    migrate(engine, folder, f"alembic_version_{service}")
    return engine


def make_station(data_dir: Path, records: int = 20) -> None:
    """A station's data directory as the services leave it, with ``records`` in the outbox."""
    for service in backups.DATABASE_SERVICES:
        engine = migrated(f"sqlite:///{data_dir / service / f'{service}.db'}", service)
        if service == "billing":
            queue_records(engine, [sample_record() for _ in range(records)])
        engine.dispose()
    token = data_dir / "sync" / "central-token"
    token.parent.mkdir(parents=True)
    token.write_text(TOKEN)
    token.chmod(0o600)


def dump(path: Path) -> list[str]:
    """A database's schema and rows as SQL text, to compare two copies."""
    connection = sqlite3.connect(path)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def outbox_count(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM billing_outbox").fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def station_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "station"
    make_station(data_dir)
    return data_dir


@pytest.fixture
def archive(station_dir: Path, tmp_path: Path) -> Path:
    return backups.backup(station_dir, tmp_path / "backup.tar.gz", environ={}).path


def resealed(
    source: Path, target: Path, change: Callable[[backups.DatabaseEntry], dict[str, object]]
) -> Path:
    """``source`` with each database's manifest entry changed and the manifest sealed again,
    as an archive made by other software would be."""
    with tarfile.open(source, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    manifest = backups.Manifest.model_validate_json(members[0][1])
    databases = [entry.model_copy(update=change(entry)) for entry in manifest.databases]
    body = manifest.model_copy(update={"databases": databases}).sealed().model_dump_json()
    with tarfile.open(target, "w:gz") as tar:
        info = tarfile.TarInfo(backups.MANIFEST)
        info.size = len(body.encode())
        tar.addfile(info, io.BytesIO(body.encode()))
        for member, data in members[1:]:
            tar.addfile(member, io.BytesIO(data))
    return target


# -- the round trip ----------------------------------------------------------------------------


def test_restore_gives_back_every_database_and_the_token(
    station_dir: Path, archive: Path, tmp_path: Path
) -> None:
    restored = tmp_path / "restored"
    manifest = backups.restore(archive, restored, environ={})
    for service in backups.DATABASE_SERVICES:
        original = station_dir / service / f"{service}.db"
        copy = restored / service / f"{service}.db"
        assert dump(copy) == dump(original), service
        assert copy.stat().st_mode & 0o777 == 0o600
    token = restored / "sync" / "central-token"
    assert token.read_text() == TOKEN
    assert token.stat().st_mode & 0o777 == 0o600
    assert outbox_count(restored / "billing" / "billing.db") == 20
    assert archive.stat().st_mode & 0o777 == 0o600
    assert {entry.service for entry in manifest.databases} == set(backups.DATABASE_SERVICES)


def test_manifest_says_what_when_which_schema_and_checksums(archive: Path) -> None:
    manifest = backups.read_manifest(archive)
    assert manifest.intact()
    assert manifest.station_id == "station-1"
    assert manifest.created_at.tzinfo is not None
    assert datetime.now(UTC) - manifest.created_at < timedelta(minutes=1)
    assert manifest.tool_version
    for entry in manifest.databases:
        assert entry.engine == "sqlite"
        assert entry.file == f"{entry.service}.db"
        assert entry.revision in backups.known_revisions(entry.service)
        assert len(entry.sha256) == 64 and entry.size > 0
    assert [f.path for f in manifest.files] == ["sync/central-token"]
    with tarfile.open(archive, "r:gz") as tar:
        assert tar.getnames()[0] == backups.MANIFEST
        assert all(member.mode == 0o600 for member in tar)


def test_a_copy_taken_while_billing_writes_is_one_commit(station_dir: Path, tmp_path: Path) -> None:
    """Each transaction queues two records: a copy from the middle of one would be odd."""
    engine = make_engine(f"sqlite:///{station_dir / 'billing' / 'billing.db'}")
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            queue_records(engine, [sample_record(), sample_record()])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = [
            backups.backup(station_dir, tmp_path / f"b{i}.tar.gz", environ={}) for i in range(5)
        ]
    finally:
        stop.set()
        writer.join()
    counts = []
    for i, taken in enumerate(copies):
        restored = tmp_path / f"r{i}"
        backups.restore(taken.path, restored, environ={})
        database = restored / "billing" / "billing.db"
        connection = sqlite3.connect(database)
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        connection.close()
        counts.append(outbox_count(database))
    assert all(count % 2 == 0 for count in counts), counts
    with engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(billing_outbox)).scalar_one()
    assert counts[-1] <= total
    engine.dispose()


# -- refusals ----------------------------------------------------------------------------------


def refused(archive: Path, target: Path, words: str) -> None:
    with pytest.raises(backups.BackupError, match=words):
        backups.restore(archive, target, environ={})
    assert not target.exists() or not any(target.iterdir()), "a refused restore wrote nothing"


def test_restore_refuses_a_data_directory_that_is_not_empty(archive: Path, tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "station.json").write_text("{}")
    with pytest.raises(backups.BackupError, match="is not empty"):
        backups.restore(archive, target, environ={})
    assert [p.name for p in target.iterdir()] == ["station.json"]


def test_restore_refuses_a_flipped_byte(archive: Path, tmp_path: Path) -> None:
    """A byte changed inside a database: the gzip CRC or the member's sha256 catches it."""
    raw = bytearray(gzip.decompress(archive.read_bytes()))
    offset = raw.index(b"SQLite format 3") + 5000
    raw[offset] ^= 0xFF
    damaged = tmp_path / "flipped.tar.gz"
    damaged.write_bytes(gzip.compress(bytes(raw)))
    refused(damaged, tmp_path / "r", "damaged: .* does not match its checksum")


def test_restore_refuses_a_file_damaged_as_stored(archive: Path, tmp_path: Path) -> None:
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    damaged = tmp_path / "corrupt.tar.gz"
    damaged.write_bytes(bytes(raw))
    refused(damaged, tmp_path / "r", "damaged|not a readable")


def test_restore_refuses_a_truncated_file(archive: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    refused(truncated, tmp_path / "r", "damaged|not a readable")


def test_restore_refuses_what_is_no_backup(tmp_path: Path) -> None:
    text = tmp_path / "notes.tar.gz"
    text.write_text("not an archive at all\n")
    refused(text, tmp_path / "r", "not a readable station backup")
    refused(tmp_path / "missing.tar.gz", tmp_path / "r", "does not exist")


def test_restore_refuses_a_manifest_edited_without_its_checksum(
    archive: Path, tmp_path: Path
) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar]  # type: ignore[union-attr]
    body = members[0][1].replace(b'"station-1"', b'"station-9"')
    edited = tmp_path / "edited.tar.gz"
    with tarfile.open(edited, "w:gz") as tar:
        info = tarfile.TarInfo(backups.MANIFEST)
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        for member, data in members[1:]:
            tar.addfile(member, io.BytesIO(data))
    refused(edited, tmp_path / "r", "manifest does not match its checksum")


def test_restore_refuses_a_schema_newer_than_this_software(archive: Path, tmp_path: Path) -> None:
    newer = resealed(archive, tmp_path / "newer.tar.gz", lambda e: {"revision": "0099_future"})
    refused(newer, tmp_path / "r", "schema revision 0099_future, which this software")


def test_restore_takes_an_older_schema(archive: Path, tmp_path: Path) -> None:
    """The services migrate an older database forward when they start."""

    def first(entry: backups.DatabaseEntry) -> dict[str, object]:
        return {"revision": min(backups.known_revisions(entry.service))}

    older = resealed(archive, tmp_path / "older.tar.gz", first)
    manifest = backups.restore(older, tmp_path / "r", environ={})
    assert {e.revision for e in manifest.databases} == {
        min(backups.known_revisions(s)) for s in backups.DATABASE_SERVICES
    }


def test_a_manifest_cannot_point_outside_the_data_directory(archive: Path, tmp_path: Path) -> None:
    evil = resealed(archive, tmp_path / "evil.tar.gz", lambda e: {"file": "../../escape.db"})
    refused(evil, tmp_path / "r", "unknown member")


# -- the schedule ------------------------------------------------------------------------------


def test_backup_into_a_folder_keeps_the_newest(station_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "backups"
    out.mkdir()
    names = [
        backups.archive_name("station-1", datetime(2026, 12, day, 3, 17, tzinfo=UTC))
        for day in (1, 2, 3)
    ]
    for name in names:
        (out / name).write_bytes(b"old")
    (out / "station-backup-other-20261201T031700Z.tar.gz").write_bytes(b"another station's")
    (out / "notes.txt").write_text("kept")
    taken, deleted = backups.backup_into(station_dir, out, keep=2, environ={})
    assert sorted(p.name for p in deleted) == names[:2]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [names[2], taken.path.name, "station-backup-other-20261201T031700Z.tar.gz", "notes.txt"]
    )
    backups.verify(taken.path)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1.5d", 129600)]
)
def test_durations(text: str, seconds: float) -> None:
    assert backups.parse_duration(text) == seconds


# -- the commands ------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return int(exit_.value.code or 0)


def test_the_commands_back_up_check_and_restore(
    station_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "station.tar.gz"
    assert run(["backup", "--data-dir", str(station_dir), "--out", str(file)]) == 0
    said = capsys.readouterr().out
    assert str(file) in said and "billing" in said
    assert run(["restore", "--from", str(file), "--check"]) == 0
    assert "is sound" in capsys.readouterr().out
    target = tmp_path / "new"
    assert run(["restore", "--data-dir", str(target), "--from", str(file)]) == 0
    assert f"station up --data-dir {target}" in capsys.readouterr().out
    assert run(["restore", "--data-dir", str(target), "--from", str(file)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("station restore: ") and "is not empty" in err
    assert len(err.splitlines()) == 1


def test_backup_of_a_folder_without_a_station_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["backup", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "b")])
    assert code == 1
    assert "no database of billing" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        server = Postgres(settings=TEST_SETTINGS)
        server.start()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.close()


def test_postgres_databases_are_dumped_and_restored(
    postgres: Postgres, station_dir: Path, tmp_path: Path
) -> None:
    """Billing on PostgreSQL (as in the chart), the others on SQLite: pg_dump and
    pg_restore for the one, SQLite's backup for the others, one manifest for all."""
    source_url = postgres.create_database("billing_source")
    engine = migrated(source_url, "billing")
    queue_records(engine, [sample_record() for _ in range(7)])
    engine.dispose()
    environ = {"STATION_BILLING_DATABASE_URL": source_url}
    taken = backups.backup(station_dir, tmp_path / "pg.tar.gz", environ=environ)
    billing = next(e for e in taken.manifest.databases if e.service == "billing")
    assert (billing.engine, billing.file) == ("postgresql", "billing.dump")
    assert billing.revision in backups.known_revisions("billing")

    target_url = postgres.create_database("billing_target")
    restored = tmp_path / "restored"
    backups.restore(taken.path, restored, environ={"STATION_BILLING_DATABASE_URL": target_url})
    engine = make_engine(target_url)
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(billing_outbox)).scalar_one()
    engine.dispose()
    assert rows == 7
    assert not (restored / "billing").exists()
    assert (restored / "verification" / "verification.db").is_file()
    migrated(target_url, "billing").dispose()  # the service starts on it: nothing to do

    with pytest.raises(backups.BackupError, match="is not empty"):
        backups.restore(
            taken.path, tmp_path / "again", environ={"STATION_BILLING_DATABASE_URL": target_url}
        )
    with pytest.raises(backups.BackupError, match="restore into the same kind of database"):
        backups.restore(taken.path, tmp_path / "sqlite", environ={})


def test_the_schedule_backs_up_each_period_and_keeps_the_newest(
    station_dir: Path, tmp_path: Path
) -> None:
    said: list[str] = []
    out = tmp_path / "scheduled"
    schedule = backups.Schedule(
        data_dir=station_dir,
        out_dir=out,
        every=3600,
        keep=2,
        say=said.append,
        complain=said.append,
    )
    schedule.tick()
    assert schedule.running is None, "the first backup is one period after the start"
    for _ in range(3):
        schedule.next_at = 0.0
        schedule.tick()
        schedule.wait(30)
        time.sleep(1.05)  # the names are to the second
    assert len(said) == 3 and all(line.startswith("Backup: ") for line in said), said
    kept = sorted(out.iterdir())
    assert len(kept) == 2
    assert all(backups.verify(path).station_id == "station-1" for path in kept)


def test_station_up_takes_the_schedule_from_its_options() -> None:
    args = build_parser().parse_args(
        ["up", "--backup-every", "30m", "--backup-keep", "3", "--backup-dir", "/b"]
    )
    assert (args.backup_every, args.backup_keep, args.backup_dir) == (1800, 3, Path("/b"))
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--backup-every", "soon"])
