"""Batches as the flusher sees them: raw texts, parts of a lease, short write transactions, fork.

``lease``/``ack``/``release``/``dead_letter`` split big calls into transactions of at most
``SpoolConfig.max_txn_rows`` records and read record data after COMMIT on the side connection;
``ack`` of a batch (or a part of one) deletes by id range when the lease proves that exact. These
tests pin the structure (which statements run, on which connection) and that every count and
size stays exact whichever path was taken.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from spool_support import FakeClock, entry, run_child_ok, seq_of

from yai_spool.spool import Batch, Spool, SpoolConfig
from yai_spool.spool.files import open_lock, quarantine
from yai_spool.spool.schema import encode_stored


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _spool(tmp_path: Path, clock: FakeClock, **config: object) -> Spool:
    return Spool(tmp_path / "spool.db", SpoolConfig(**config), clock=clock)  # type: ignore[arg-type]


def _trace(spool: Spool) -> list[str]:
    """Every SQL statement the spool's main connection runs from now on."""
    seen: list[str] = []
    assert spool._store is not None
    spool._store.conn.set_trace_callback(seen.append)
    return seen


def test_a_big_lease_is_one_batch_marked_in_short_transactions(
    tmp_path: Path, clock: FakeClock
) -> None:
    with _spool(tmp_path, clock, max_txn_rows=7) as spool:
        for i in range(100):
            spool.append(entry(i), dest="b" if i % 4 == 3 else "a")  # other rows interleave
        main = _trace(spool)
        batch = spool.lease(50, 1 << 20, lease_seconds=30)
        assert batch is not None
        assert batch.dest == "a"
        assert [seq_of(e) for e in batch.entries] == [i for i in range(100) if i % 4 != 3][:50]
        assert list(batch.ids) == sorted(batch.ids)
        # 50 records, at most 7 per write transaction; record data never read under the lock.
        assert sum(sql == "BEGIN IMMEDIATE" for sql in main) == 8
        assert not any("json_valid(data)" in sql for sql in main)
        assert spool.stats().leased_records == 50
        lo, hi, nrows = spool._store.conn.execute(  # type: ignore[union-attr]
            "SELECT lo, hi, nrows FROM leases"
        ).fetchone()
        assert (lo, hi, nrows) == (batch.ids[0], batch.ids[-1], 50)

        main.clear()
        assert spool.ack(batch) == 50
        assert sum(sql == "BEGIN IMMEDIATE" for sql in main) == 8
        # The whole lease is acked by id ranges: no id list, no RETURNING.
        assert not any("json_each" in sql or "RETURNING" in sql for sql in main)
        stats = spool.stats()
        assert (stats.ready_records, stats.leased_records, stats.delivered) == (50, 0, 50)
        assert stats.active_leases == 0
        assert spool._book == {}  # the settled lease is forgotten


def test_stored_logs_sizes_and_lazy_entries(tmp_path: Path, clock: FakeClock) -> None:
    with _spool(tmp_path, clock) as spool:
        entries = [entry(i, pad=i) for i in range(5)]
        for e in entries:
            spool.append(e, dest="d")
        batch = spool.lease(10, 1 << 20, lease_seconds=30)
        assert batch is not None
        # The batch carries the stored logs as one body, ready to send: nothing re-encoded.
        assert batch.logs == b"".join(encode_stored(e) for e in entries)
        assert batch.sizes == tuple(len(encode_stored(e)) for e in entries)
        assert batch.log_sizes == batch.sizes
        assert batch.nbytes == sum(batch.sizes) == len(batch.logs)
        assert [batch.log_of(i) for i in range(5)] == [encode_stored(e) for e in entries]
        assert list(batch.iter_entries()) == entries  # streamed: decoded one at a time
        assert batch._entries is None  # ... and nothing kept
        assert list(batch.entries) == entries  # decoded on first access, then kept
        assert batch.entries is batch.entries
        with pytest.raises(dataclasses.FrozenInstanceError):
            batch.token = "x"  # type: ignore[misc]
        assert "records=5" in repr(batch)


def test_parts_of_a_batch(tmp_path: Path, clock: FakeClock) -> None:
    with _spool(tmp_path, clock) as spool:
        for i in range(6):
            clock.advance(1)
            spool.append(entry(i), dest="d")
        batch = spool.lease(10, 1 << 20, lease_seconds=30)
        assert batch is not None
        half = batch[3:]
        assert (half.token, half.dest, half.lease_until) == (
            batch.token,
            batch.dest,
            batch.lease_until,
        )
        assert half.ids == batch.ids[3:]
        assert half.logs == b"".join(batch.log_of(i) for i in range(3, 6))
        assert half.nbytes == sum(batch.sizes[3:])  # type: ignore[index]
        assert half.oldest_enqueued_at == batch.enqueued_at[3]
        assert [seq_of(e) for e in half.entries] == [3, 4, 5]
        picked = batch.select([4, 0])
        assert picked.ids == (batch.ids[4], batch.ids[0])
        assert picked.logs == batch.log_of(4) + batch.log_of(0)
        assert picked.attempts == (0, 0)
        assert len(batch[10:]) == 0
        with pytest.raises(TypeError):
            batch[0]  # type: ignore[index]

        # Settling a part moves only its ids; the rest of the lease stays leased.
        assert spool.ack(half) == 3
        assert spool.release(batch.select([0])) == 1
        assert spool.dead_letter(batch[1:2], error_code="E", message=None, request_id=None) == 1
        stats = spool.stats()
        assert (stats.ready_records, stats.leased_records, stats.dead_records) == (1, 1, 1)
        assert spool.ack(batch) == 1  # only what the lease still holds


def test_a_batch_built_from_entries() -> None:
    """A batch of live entries (no stored logs) encodes its logs on first access."""
    entries = (entry(0), entry(1, pad=10))
    batch = Batch("t", "d", (1, 2), entries, (0, 0), 99, 1.0, 2.0, (1.0, 1.5))
    assert batch.sizes is None
    assert list(batch.iter_entries()) == list(entries)
    assert batch[1:].nbytes == len(encode_stored(entries[1]))
    assert batch[:].nbytes == 99
    assert batch.logs == encode_stored(entries[0]) + encode_stored(entries[1])
    assert batch.log_sizes == (len(encode_stored(entries[0])), len(encode_stored(entries[1])))
    with pytest.raises(TypeError):
        Batch("t", "d", (1,))
    with pytest.raises(ValueError, match="aligned"):
        Batch("t", "d", (1, 2), logs=b"\x0a\x00", sizes=(2,))
    with pytest.raises(ValueError, match="add up"):
        Batch("t", "d", (1,), logs=b"\x0a\x00", sizes=(3,))


def test_settling_by_range_stays_exact_when_parts_moved_before(
    tmp_path: Path, clock: FakeClock
) -> None:
    with _spool(tmp_path, clock, max_txn_rows=16) as spool:
        size = {}
        for i in range(60):
            spool.append(entry(i, pad=i % 7), dest="b" if i % 5 == 4 else "a")
            size[i + 1] = len(encode_stored(entry(i, pad=i % 7)))  # ids are 1, 2, ...
        batch = spool.lease(40, 1 << 20, lease_seconds=30)
        assert batch is not None
        assert len(batch) == 40
        # Some rows leave the lease by plain ids / by parts before the batch is acked.
        released = [batch.ids[5], batch.ids[6], batch.ids[20]]
        assert spool.release(released) == 3
        dead = batch[30:33]
        assert spool.dead_letter(dead, error_code="E", message=None, request_id=None) == 3
        main = _trace(spool)
        assert spool.ack(batch) == 34
        assert any("json_each" in sql for sql in main)  # the ranges no longer match: by ids
        acked = set(batch.ids) - set(released) - set(dead.ids)
        stats = spool.stats()
        assert (stats.ready_records, stats.leased_records, stats.dead_records) == (23, 0, 3)
        assert stats.delivered == 34
        assert stats.dead_bytes == dead.nbytes == sum(size[i] for i in dead.ids)
        ready = set(size) - acked - set(dead.ids)
        assert stats.ready_bytes == sum(size[i] for i in ready)
        # Acking again moves nothing, and a stale part neither.
        assert spool.ack(batch) == 0
        assert spool.ack(batch[:5]) == 0


def test_settling_a_lease_this_instance_does_not_remember(tmp_path: Path, clock: FakeClock) -> None:
    with _spool(tmp_path, clock, max_txn_rows=4) as spool:
        for i in range(10):
            spool.append(entry(i), dest="d")
        batch = spool.lease(10, 1 << 20, lease_seconds=30)
        assert batch is not None
        spool._book.clear()  # e.g. pushed out by newer leases: settled by id lists instead
        assert spool.ack(batch[:6]) == 6
        assert spool.release(batch[6:]) == 4
        stats = spool.stats()
        assert (stats.ready_records, stats.leased_records, stats.delivered) == (4, 0, 6)


def test_lease_reads_from_the_new_file_after_a_quarantine(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "spool.db"
    with Spool(path, SpoolConfig(refresh_every=1), clock=clock) as spool:
        spool.append(entry(0), dest="d")
        first = spool.lease(10, 1 << 20, lease_seconds=30)  # opens the side connection
        assert first is not None
        assert spool.ack(first) == 1
        with open_lock(path, exclusive=True):
            quarantine(path, 1_700_000_000.0)  # what another process's open does
        with Spool(path) as other:
            other.append(entry(7), dest="d")
        spool.append(entry(8), dest="d")  # notices the new file at this size refresh
        batch = spool.lease(10, 1 << 20, lease_seconds=30)
        assert batch is not None
        assert [seq_of(e) for e in batch.entries] == [7, 8]
        assert spool.checkpoint().busy is False


FORK_STRESS = """
import os, sys, threading, time
from yai_spool.spool import Spool, SpoolConfig
spool = Spool(sys.argv[1], SpoolConfig(max_txn_rows=8))
stop = threading.Event()


def entry(seq, pad=0):
    return {"time": 1_700_000_000, "contents": [["seq", str(seq)], ["message", "x" * pad]]}


def busy():
    i = 0
    while not stop.is_set():
        spool.append(entry(i, pad=200), dest="d")
        i += 1
        if i % 50 == 0:
            batch = spool.lease(64, 1 << 20, lease_seconds=30)
            spool.ack(batch)
            spool.checkpoint()

threads = [threading.Thread(target=busy) for _ in range(2)]
for t in threads:
    t.start()
for n in range(30):
    pid = os.fork()
    if pid == 0:
        spool.append(entry(-n - 1), dest="d")  # first SQLite call of the child
        os._exit(0)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, status
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.write(1, b"child %d hung\\n" % n)
            os._exit(1)
        stop.wait(0.01)  # polling a child process: nothing to wait on
stop.set()
for t in threads:
    t.join()
assert spool.stats().appended >= 30
os.write(1, b"ok\\n")
"""


def test_fork_while_other_threads_use_the_spool(tmp_path: Path) -> None:
    """Spool holds its locks across fork(): no child inherits SQLite's mutexes mid-call."""
    assert Spool.GUARDS_FORK is True
    run_child_ok(FORK_STRESS, str(tmp_path / "spool.db"), timeout=300)


def test_handler_leaves_fork_guarding_to_the_spool(tmp_path: Path) -> None:
    from yai_spool.handlers.durable import _spool_fork_locks

    with Spool(tmp_path / "spool.db") as spool:
        assert _spool_fork_locks(spool) == []
