"""Bounds, when_full policies, drop accounting and storage failures (disk full, read-only).

The bounds and ``when_full`` cases both backends share are in ``test_spool_contract.py``;
here: the durable spool's own (several writers, append_many, eviction slack, storage errors).
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from spool_support import entry, seq_of

from yai_spool.spool import (
    Spool,
    SpoolAppendStorageError,
    SpoolConfig,
    SpoolDropped,
    SpoolFull,
    SpoolStorageError,
    WhenFull,
)
from yai_spool.spool.exceptions import storage_reason

DEADLINE = 30.0


def wait_for(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll ``predicate`` until true or ``timeout`` (a poll with a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def cfg(**kw: object) -> SpoolConfig:
    kw.setdefault("evict_slack", 0.0)
    return SpoolConfig(**kw)  # type: ignore[arg-type]


def seqs(spool: Spool) -> list[int]:
    store = spool._store
    assert store is not None
    return [seq_of(r["data"]) for r in store.queue()]


def test_drop_oldest_by_bytes_keeps_the_bound_and_counts_everything(tmp_path: Path) -> None:
    limit = 20_000
    with Spool(tmp_path / "s.db", SpoolConfig(max_bytes=limit, evict_slack=0.05)) as s:
        for i in range(500):
            s.append(entry(i, pad=i % 200), dest="d")
            assert s._est_bytes <= limit
        stats = s.stats()
        assert stats.total_bytes <= limit
        kept = seqs(s)
        assert kept == list(range(500 - len(kept), 500))  # a suffix: the oldest went first
        assert stats.dropped == {"drop_oldest": 500 - len(kept)}
        assert stats.appended == 500


def test_append_many_stores_the_prefix_that_fits(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", cfg(max_records=4, when_full=WhenFull.DROP_NEWEST)) as s:
        s.append(entry(0), dest="d")
        assert s.append_many([entry(i) for i in range(1, 7)], dest="d") == 3
        assert seqs(s) == [0, 1, 2, 3]
        assert s.stats().dropped == {"drop_newest": 3}


def test_block_is_woken_by_an_ack(tmp_path: Path) -> None:
    with Spool(
        tmp_path / "s.db", cfg(max_records=1, when_full=WhenFull.BLOCK, block_timeout=60)
    ) as s:
        s.append(entry(0), dest="d")
        done = threading.Event()
        errors: list[BaseException] = []

        def producer() -> None:
            try:
                s.append(entry(1), dest="d")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            done.set()

        thread = threading.Thread(target=producer)
        thread.start()
        deadline = 10.0
        waited = threading.Event()
        # Poll (with a deadline) until the producer is parked in the wait, then free a slot.
        for _ in range(10_000):
            if s._waiting:
                break
            waited.wait(deadline / 10_000)
        assert s._waiting == 1
        batch = s.lease(1, 1 << 20, lease_seconds=30)
        assert batch is not None
        s.ack(batch)
        assert done.wait(30)
        thread.join()
        assert errors == []
        assert seqs(s) == [1]
        assert s.stats().dropped == {}


def test_overshoot_with_several_writers_is_bounded_by_refresh_every(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    conf = SpoolConfig(max_records=100, refresh_every=10, when_full=WhenFull.DROP_NEWEST)
    writers = [Spool(path, conf) for _ in range(3)]
    try:
        stored = 0
        for i in range(300):
            with contextlib.suppress(SpoolFull):
                writers[i % 3].append(entry(i), dest="d")
                stored += 1
        stats = writers[0].stats()
        assert stats.total_records == stored
        assert 100 <= stats.total_records <= 100 + 3 * 10
        assert stats.dropped["drop_newest"] == 300 - stored
    finally:
        for w in writers:
            w.close()


def fill_until_error(spool: Spool, pad: int) -> tuple[int, SpoolAppendStorageError]:
    """Append until the storage refuses; returns (appends that returned, the error)."""
    for i in range(100_000):
        try:
            spool.append(entry(i, pad=pad), dest="d")
        except SpoolAppendStorageError as exc:
            return i, exc
    raise AssertionError("the storage never filled up")


def test_disk_full_is_typed_counted_and_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = Spool(path)
    store = s._store
    assert store is not None
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    committed = fill_until_error(s, 500)
    full = committed[1]
    committed = committed[0]
    assert full.reason == "disk_full"
    assert full.sqlite_errorname == "SQLITE_FULL"
    assert isinstance(full, SpoolStorageError)
    assert isinstance(full, SpoolDropped)
    assert committed > 0
    with pytest.raises(SpoolAppendStorageError):
        s.append(entry(-1, pad=500), dest="d")
    stats = s.stats()  # the in-memory count is visible at once
    assert stats.dropped == {"disk_full": 2}
    assert stats.ready_records == committed
    store.conn.execute("PRAGMA max_page_count = 1000000")
    s.append(entry(10_001), dest="d")  # first good write persists the pending drops
    s.close()
    with Spool(path) as again:
        stats = again.stats()
        assert stats.dropped == {"disk_full": 2}
        assert stats.ready_records == committed + 1


def test_readonly_database_is_typed_and_counted(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db") as s:
        s.append(entry(0), dest="d")
        store = s._store
        assert store is not None
        store.conn.execute("PRAGMA query_only = ON")  # SQLite answers SQLITE_READONLY
        with pytest.raises(SpoolAppendStorageError) as ro:
            s.append(entry(1), dest="d")
        assert ro.value.reason == "readonly"
        with pytest.raises(SpoolStorageError) as lease_err:
            s.lease(1, 1 << 20, lease_seconds=30)
        assert lease_err.value.reason == "readonly"
        store.conn.execute("PRAGMA query_only = OFF")
        s.append(entry(2), dest="d")
        assert seqs(s) == [0, 2]
        assert s.stats().dropped == {"readonly": 1}


def test_storage_reason_maps_by_error_name() -> None:
    def err(name: str) -> sqlite3.Error:
        exc = sqlite3.OperationalError("x")
        exc.sqlite_errorname = name  # type: ignore[attr-defined]
        return exc

    assert storage_reason(err("SQLITE_FULL")) == "disk_full"
    assert storage_reason(err("SQLITE_READONLY_DBMOVED")) == "readonly"
    assert storage_reason(err("SQLITE_CANTOPEN")) == "permission"
    assert storage_reason(err("SQLITE_BUSY_SNAPSHOT")) == "busy"
    assert storage_reason(err("SQLITE_CORRUPT")) == "corrupt"
    assert storage_reason(err("SQLITE_IOERR_WRITE")) == "disk_error"
    assert storage_reason(PermissionError(13, "denied")) == "permission"
    assert storage_reason(OSError(28, "No space left on device")) == "disk_full"
    assert storage_reason(OSError(30, "Read-only file system")) == "readonly"


def test_wal_restarts_during_a_sustained_burst_without_a_flusher(tmp_path: Path) -> None:
    """Writers never pause, so no checkpoint catches up by itself: the WAL must still restart
    (journal_size_limit cuts the file back), not grow for as long as the burst lasts."""
    limit = 256 * 1024
    with Spool(tmp_path / "s.db", SpoolConfig(wal_max_bytes=limit, refresh_every=32)) as s:
        wal = Path(f"{s.path}-wal")
        restarts, largest, n = 0, 0, 0
        deadline = time.monotonic() + DEADLINE
        while restarts < 3 and time.monotonic() < deadline:
            for _ in range(50):
                s.append(entry(n), dest="d")
                n += 1
            size = wal.stat().st_size
            restarts += size < largest  # the file only shrinks when the WAL restarts
            largest = size if size >= largest else 0
        assert restarts >= 3, f"the WAL never restarted in {n} appends"
        assert s.stats().ready_records == n


def test_an_idle_spool_keeps_nothing_only_in_its_wal(tmp_path: Path) -> None:
    """No flusher, writes stop: within a few housekeeping ticks every record is in the
    database file itself, so losing (or garbling) the -wal file loses nothing."""
    path = tmp_path / "s.db"
    s = Spool(path)
    for i in range(2000):
        s.append(entry(i), dest="d")
    wal = Path(f"{path}-wal")
    assert wait_for(lambda: wal.stat().st_size == 0), "the idle WAL was never truncated"
    copy = tmp_path / "copy.db"  # the database file alone, as if the WAL were gone
    copy.write_bytes(path.read_bytes())
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("SELECT count(*) FROM ack_queue_spool").fetchone()[0] == 2000
    s.close()


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str = "1m") -> Iterator[Path]:
    where.mkdir()
    try:
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("no mount(8)")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_real_disk_full_and_read_only_filesystem(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "mnt") as mnt:
        path = mnt / "s.db"
        s = Spool(path, SpoolConfig(wal_max_bytes=128 * 1024, refresh_every=16))
        committed, full = fill_until_error(s, 2000)
        assert full.reason == "disk_full"
        assert committed > 10
        s.close()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        ro = Spool.open_readonly(path)
        try:
            assert ro.stats().ready_records == committed  # nothing committed was lost
        finally:
            ro.close()
        with pytest.raises(SpoolStorageError):
            Spool(path)  # cannot open for writing on a read-only filesystem


def test_a_refused_record_costs_no_more_than_an_accepted_one(tmp_path: Path) -> None:
    """drop_newest on a full spool: one SQLite statement per refused record (the counter),
    as for an accepted one (the INSERT), not a size query plus a transaction each time.
    Counted with SQLite's statement trace on the writer connection, not timed."""

    def statements_per_call(spool: Spool, first: int, n: int) -> list[int]:
        store = spool._store
        assert store is not None
        trace: list[str] = []
        store.conn.set_trace_callback(trace.append)
        counts = []
        try:
            for i in range(first, first + n):
                before = len(trace)
                with contextlib.suppress(SpoolFull):
                    spool.append(entry(i), dest="d")
                counts.append(len(trace) - before)
        finally:
            store.conn.set_trace_callback(None)
        return counts

    config = cfg(max_records=100, when_full=WhenFull.DROP_NEWEST)
    with Spool(tmp_path / "accepting.db", config) as room:
        room.append(entry(0), dest="d")  # the first append takes the slow path
        accepted = statements_per_call(room, 1, 40)
    with Spool(tmp_path / "full.db", config) as full:
        for i in range(100):
            full.append(entry(i), dest="d")
        with pytest.raises(SpoolFull):  # the exact decision, once
            full.append(entry(100), dest="d")
        refused = statements_per_call(full, 101, 40)
        assert full.stats().dropped == {"drop_newest": 41}  # every refusal counted, exactly
    assert sorted(accepted)[len(accepted) // 2] == 1
    assert sorted(refused)[len(refused) // 2] <= 1
