"""File modes, corruption quarantine, schema versioning and migrations."""

from __future__ import annotations

import os
import random
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from spool_support import entry, seq_of

from yai_spool.spool import (
    SCHEMA_VERSION,
    Spool,
    SpoolConfig,
    SpoolPermissionError,
    SpoolSchemaError,
)
from yai_spool.spool.files import open_lock, quarantine
from yai_spool.spool.schema import QUEUE_TABLE, ensure_schema


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("permissive_umask")
def test_new_spool_is_private_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "spool.db"
    with Spool(path) as s:
        s.append(entry(1), dest="d")
        assert s.acquire_flusher()
        assert mode(path.parent) == 0o700
        for suffix in ("", "-wal", "-shm", ".open.lock", ".flusher.lock"):
            assert mode(f"{path}{suffix}") == 0o600, suffix
        assert s.open_events == ()


def test_loose_file_modes_are_repaired_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as s:
        s.append(entry(1), dest="d")
        os.chmod(path, 0o644)
        os.chmod(f"{path}-wal", 0o666)
        with Spool(path) as again:
            kinds = sorted((e.kind, e.detail["path"]) for e in again.open_events)
            assert kinds == [
                ("permissions_repaired", str(path)),
                ("permissions_repaired", f"{path}-wal"),
            ]
            assert mode(path) == mode(f"{path}-wal") == 0o600
            assert {e.kind for e in again.stats().events} == {"permissions_repaired"}


def test_unsafe_directories(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(SpoolPermissionError, match="writable by group/other"):
        Spool(shared / "s.db")
    assert not (shared / "s.db").exists()
    os.chmod(shared, 0o1777)  # sticky, like /tmp: others cannot replace our files
    Spool(shared / "s.db").close()
    readable = tmp_path / "readable"
    readable.mkdir()
    os.chmod(readable, 0o755)
    for _ in range(2):
        with Spool(readable / "s.db") as s:
            assert [e.kind for e in s.open_events] == ["loose_directory_mode"]
            assert [e.kind for e in s.stats().events] == ["loose_directory_mode"]  # stored once
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(SpoolPermissionError):
        Spool(not_a_dir / "s.db")


def fill(path: Path, n: int = 300) -> None:
    with Spool(path) as s:
        for i in range(n):
            s.append(entry(i, pad=300), dest="d")
        s.checkpoint("TRUNCATE")  # everything in the main file


def corrupt_root_page(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = ?", (QUEUE_TABLE,)
        ).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        flag = f.read(1)[0]
        f.seek((root - 1) * page_size)
        f.write(bytes([flag ^ 0xFF]))  # b-tree page type byte: no longer a valid page type


def truncate_half(path: Path) -> None:
    size = os.stat(path).st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(3 * 4096))
    os.chmod(path, 0o600)


@pytest.mark.parametrize("damage", [truncate_half, garbage, corrupt_root_page])
def test_corrupt_spool_is_quarantined_and_replaced(tmp_path: Path, damage) -> None:
    path = tmp_path / "spool.db"
    if damage is not garbage:
        fill(path)
    damage(path)
    before = path.read_bytes()
    (tmp_path / "spool.db-wal").write_bytes(b"not a wal either")
    os.chmod(tmp_path / "spool.db-wal", 0o600)
    with Spool(path) as s:
        quarantined = [e for e in s.open_events if e.kind == "quarantined"]
        assert len(quarantined) == 1
        moved = Path(quarantined[0].detail["moved_to"])
        assert moved.name.startswith("spool.db.corrupt-")
        assert moved.name.endswith("Z")
        assert moved.read_bytes() == before  # kept for forensics, untouched
        assert Path(f"{moved}-wal").read_bytes() == b"not a wal either"
        assert mode(moved) == 0o600
        assert [e.kind for e in s.stats().events] == ["quarantined"]  # recorded in the fresh file
        s.append(entry(1), dest="d")
        batch = s.lease(10, 1 << 20, lease_seconds=30)
        assert batch is not None
        assert [seq_of(e) for e in batch.entries] == [1]
    with Spool(path) as again:  # the fresh file is fine: no second quarantine
        assert again.open_events == ()
        assert again.stats().ready_records == 0


def test_quarantine_without_quick_check_still_catches_a_broken_header(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    garbage(path)
    with Spool(path, SpoolConfig(integrity_check="none")) as s:
        assert [e.kind for e in s.open_events] == ["quarantined"]


def test_a_writer_follows_the_path_after_another_process_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    a = Spool(path, SpoolConfig(refresh_every=4))
    try:
        for i in range(3):
            a.append(entry(i), dest="d")
        with open_lock(path, exclusive=True):
            moved = quarantine(path, 1_700_000_000.0)  # what another process's open does
        with Spool(path) as b:
            for i in range(3, 11):
                a.append(entry(i), dest="d")
            in_new = b.stats().ready_records
            assert 8 - 4 <= in_new <= 8  # at most refresh_every appends went to the old file
            with Spool(moved, SpoolConfig(integrity_check="none")) as old:
                assert old.stats().ready_records + in_new == 11
    finally:
        a.close()


def test_foreign_or_newer_files_are_refused_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "app.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    os.chmod(foreign, 0o600)
    before = foreign.read_bytes()
    with pytest.raises(SpoolSchemaError, match="not a yai-spool file"):
        Spool(foreign)
    assert foreign.read_bytes() == before
    newer = tmp_path / "newer.db"
    Spool(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SpoolSchemaError, match="newer"):
        Spool(newer)
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_migration_hook_upgrades_in_the_open_transaction(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Spool(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    try:

        def add_priority(c: sqlite3.Connection) -> None:
            c.execute(f"ALTER TABLE {QUEUE_TABLE} ADD COLUMN priority INTEGER NOT NULL DEFAULT 0")

        conn.execute("BEGIN IMMEDIATE")
        migrations = {SCHEMA_VERSION: add_priority}
        assert ensure_schema(conn, 0.0, migrations, target=SCHEMA_VERSION + 1) == SCHEMA_VERSION
        conn.execute("COMMIT")
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({QUEUE_TABLE})")]
        assert "priority" in columns
        conn.execute("BEGIN IMMEDIATE")
        with pytest.raises(SpoolSchemaError, match="no migration"):
            ensure_schema(conn, 0.0, {}, target=SCHEMA_VERSION + 2)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
