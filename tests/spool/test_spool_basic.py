"""Behaviour of one spool file in one process: states, leases, owners, counters, readers.

What the durable spool shares with the memory spool (append, lease, settling, expiry,
counters) is tested once for both in ``test_spool_contract.py``; this file keeps what only
the durable one has (several handles on one file, persistence, purge, readers, codecs).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from persistqueue.sqlackqueue import SQLiteAckQueue
from spool_support import FakeClock, crash, entry, seq_of

from yai_spool.sls.errors import YaiSpoolError
from yai_spool.spool import (
    Batch,
    Failure,
    RecordState,
    Spool,
    SpoolClosedError,
    SpoolConfig,
    SpoolDropped,
    SpoolEncodeError,
    SpoolError,
    SpoolQueue,
    SpoolReadOnlyError,
    SpoolRecordTooLarge,
    SpoolStorageError,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spool(tmp_path: Path, clock: FakeClock) -> Spool:
    s = Spool(tmp_path / "spool.db", clock=clock)
    yield s
    s.close()


def lease_all(spool: Spool, n: int = 1000, nbytes: int = 1 << 20, ttl: float = 30) -> Batch:
    batch = spool.lease(n, nbytes, lease_seconds=ttl)
    assert batch is not None
    return batch


def stored(e: dict) -> bytes:
    """What the spool stores for an entry: its stored log (the size unit of nbytes)."""
    from yai_spool.spool.schema import encode_stored

    return encode_stored(e)


def test_ack_by_plain_ids_only_touches_this_instances_leases(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "s.db"
    with Spool(path, clock=clock) as one, Spool(path, clock=clock) as two:
        for i in range(4):
            one.append(entry(i), dest="d")
        batch = lease_all(one, n=2)
        assert two.ack(list(batch.ids)) == 0  # another owner
        assert one.ack([batch.ids[0]]) == 1  # plain ids: any lease of this instance
        rest = lease_all(two)
        assert [seq_of(e) for e in rest.entries] == [2, 3]
        assert one.ack(list(rest.ids)) == 0
        assert two.ack(batch) == 1  # a Batch is its lease token, whoever holds it: ids[1] left
        assert one.ack(batch) == 0


def test_dead_letter_and_replay(spool: Spool, clock: FakeClock) -> None:
    for i in range(4):
        spool.append(entry(i), dest="d")
    batch = lease_all(spool)
    too_big = Failure("InvalidLogSize", "too big", "r1")
    assert spool.give_up(batch.ids[:2], too_big, attempts=7) == 2
    bad = spool.dead_letter(
        [batch.ids[2]], error_code="PostBodyInvalid", message="bad", request_id=None
    )
    assert bad == 1
    dead = spool.dead_letters()
    assert [(seq_of(d.entry), d.attempts, d.error_code) for d in dead] == [
        (0, 7, "InvalidLogSize"),
        (1, 7, "InvalidLogSize"),
        (2, 1, "PostBodyInvalid"),
    ]
    assert dead[0].dead_at == clock.now
    stats = spool.stats()
    assert (stats.dead_records, stats.leased_records, stats.dead_lettered) == (3, 1, 3)
    assert stats.last_error is not None
    assert stats.last_error.code == "PostBodyInvalid"
    assert spool.ack(batch) == 1  # the remaining leased row
    clock.advance(100)
    assert spool.replay_dead(error_code="InvalidLogSize", older_than=200) == 0
    assert spool.replay_dead(error_code="InvalidLogSize", older_than=50) == 2
    assert spool.replay_dead(ids=[dead[2].id]) == 1
    again = lease_all(spool)
    assert [seq_of(e) for e in again.entries] == [0, 1, 2]
    assert again.attempts == (0, 0, 0)
    assert again.oldest_enqueued_at == clock.now  # re-enqueued
    stats = spool.stats()
    assert (stats.dead_records, stats.replayed, stats.appended) == (0, 3, 4)


def test_purge_by_state(spool: Spool) -> None:
    for i in range(6):
        spool.append(entry(i), dest="d")
    batch = lease_all(spool, n=2)
    spool.dead_letter([batch.ids[0]], error_code="X", message="", request_id=None)
    assert spool.purge(RecordState.READY) == 4
    assert spool.purge("dead") == 1
    assert spool.stats().leased_records == 1
    assert spool.purge("all") == 1
    stats = spool.stats()
    assert stats.total_records == 0
    assert stats.purged == 6
    assert stats.active_leases == 0
    with pytest.raises(ValueError, match="purge state"):
        spool.purge("everything")


def test_acquire_flusher_reverts_leases_of_a_dead_owner(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "s.db"
    dead = Spool(path, clock=clock)
    for i in range(3):
        dead.append(entry(i), dest="d")
    assert dead.acquire_flusher()
    held = lease_all(dead, ttl=3600)
    crash(dead)
    with Spool(path, clock=clock) as flusher:
        mine = None
        assert flusher.acquire_flusher()  # the crash released the flock
        assert flusher.stats().leased_records == 0
        mine = lease_all(flusher)
        assert mine.ids == held.ids
        assert mine.attempts == (1, 1, 1)
        # A second acquire by the holder keeps its own leases.
        assert flusher.acquire_flusher()
        assert flusher.stats().leased_records == 3
        assert flusher.ack(mine) == 3


def test_counters_survive_reopen(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "s.db"
    with Spool(path, clock=clock) as s:
        for i in range(3):
            s.append(entry(i), dest="d")
        s.ack(lease_all(s, n=1), request_id="r")
        s.record_error(code="WriteQuotaExceed", message="quota", request_id="q", throttled=True)
        s.record_delivery(request_id="extra", records=0)
        with pytest.raises(SpoolEncodeError):
            s.append({"time": 1, "contents": [["k", {1, 2}]]}, dest="d")
    with Spool(path, clock=clock) as s:
        stats = s.stats()
        assert (stats.appended, stats.delivered, stats.throttled_requests) == (3, 1, 1)
        assert stats.ready_records == 2
        assert stats.dropped == {"encode_error": 1}
        assert stats.last_error is not None
        assert stats.last_error.code == "WriteQuotaExceed"
        assert stats.last_success_request_id == "extra"


def test_drops_before_storage_are_typed_and_counted(tmp_path: Path) -> None:
    with Spool(tmp_path / "s.db", SpoolConfig(max_record_bytes=500)) as s:
        s.append(entry(0), dest="d")
        with pytest.raises(SpoolEncodeError) as enc:
            s.append({"time": 1, "contents": [["v", object()]]}, dest="d")
        assert enc.value.reason == "encode_error"
        assert isinstance(enc.value, ValueError)
        with pytest.raises(SpoolRecordTooLarge) as big:
            s.append(entry(1, pad=600), dest="d")
        assert isinstance(big.value, SpoolDropped)
        assert isinstance(big.value, SpoolError)
        assert isinstance(big.value, YaiSpoolError)
        with pytest.raises(SpoolEncodeError):
            s.append(entry(2), dest="bad\udcffdest")
        with pytest.raises(TypeError):
            s.append(entry(3), dest=b"bytes")  # type: ignore[arg-type]
        with pytest.raises(SpoolEncodeError):
            s.append({"contents": [["k", "no time"]]}, dest="d")
        with pytest.raises(SpoolEncodeError):  # not valid UTF-8 text: the mapper never writes it
            s.append({"time": 1, "contents": [["k", "lone \udcff"]]}, dest="d")
        with pytest.raises(SpoolEncodeError):
            s.append({"time": 2**32, "contents": [["k", "v"]]}, dest="d")
        stats = s.stats()
        assert stats.dropped == {"encode_error": 5, "too_large": 1}
        assert stats.appended == 1
        batch = s.lease(10, 10_000, lease_seconds=60)
        assert batch is not None
        assert batch.entries == (entry(0),)


def test_non_ascii_text_survives_exactly(spool: Spool) -> None:
    weird = {"time": 5, "time_ns": 7, "contents": [["k", "caf\u00e9 \u4e2d\u6587 \u2603"]]}
    spool.append(weird, dest="d")
    spool.append({"time": 6, "time_ns": 0, "contents": [["k", "\u4e2d"]]}, dest="d")
    batch = lease_all(spool)
    assert batch.entries == (weird, {"time": 6, "time_ns": 0, "contents": [["k", "\u4e2d"]]})
    assert batch.nbytes == len(stored(weird)) + len(stored(batch.entries[1]))
    assert batch.logs == stored(weird) + stored(batch.entries[1])


def test_append_many_is_one_call_with_individual_drops(spool: Spool) -> None:
    count = spool.append_many([entry(0), {"bad": object()}, entry(2)], dest="d")
    assert count == 2
    assert [seq_of(e) for e in lease_all(spool).entries] == [0, 2]
    assert spool.stats().dropped == {"encode_error": 1}
    assert spool.append_many([], dest="d") == 0


def test_undecodable_row_is_dead_lettered_not_returned(spool: Spool) -> None:
    for i in range(3):
        spool.append(entry(i), dest="d")
    store = spool._store
    assert store is not None
    store.conn.execute("UPDATE ack_queue_spool SET data = '{broken' WHERE _id = 2")
    batch = lease_all(spool)
    assert [seq_of(e) for e in batch.entries] == [0, 2]
    dead = spool.dead_letters()
    assert [(d.original_id, d.error_code, d.entry) for d in dead] == [
        (2, "SpoolDecodeError", "{broken")
    ]
    store.conn.execute("UPDATE ack_queue_spool SET data = '1,2' WHERE _id = 3")
    assert spool.release(batch) == 2
    # "1,2" would shift a joined decode by one: detected, only that row is parked.
    again = lease_all(spool)
    assert [seq_of(e) for e in again.entries] == [0]
    assert len(spool.dead_letters()) == 2


def test_checkpoint_and_wal(spool: Spool) -> None:
    for i in range(50):
        spool.append(entry(i), dest="d")
    result = spool.checkpoint()
    assert not result.busy
    assert result.wal_frames == result.checkpointed_frames > 0
    spool.checkpoint("TRUNCATE")
    assert spool.stats().wal_bytes == 0
    with pytest.raises(ValueError, match="checkpoint mode"):
        spool.checkpoint("SOMETIMES")


def test_readonly_open_reads_and_refuses_writes(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "s.db"
    with pytest.raises(SpoolStorageError) as missing:
        Spool.open_readonly(path)
    assert missing.value.reason == "permission"
    assert not path.exists()  # read-only never creates
    with Spool(path, clock=clock) as writer:
        writer.append(entry(1), dest="d")
        ro = Spool.open_readonly(path, clock=clock)
        try:
            assert ro.stats().ready_records == 1
            writer.append(entry(2), dest="d")
            assert ro.stats().ready_records == 2  # sees new commits
            for call in (
                lambda: ro.append(entry(3), dest="d"),
                lambda: ro.lease(1, 1, lease_seconds=1),
                lambda: ro.ack([1]),
                lambda: ro.purge("all"),
                ro.checkpoint,
                ro.acquire_flusher,
            ):
                with pytest.raises(SpoolReadOnlyError):
                    call()
            assert ro.dead_letters() == []
            with pytest.raises(__import__("sqlite3").OperationalError, match="readonly"):
                ro._store.conn.execute("DELETE FROM ack_queue_spool")  # type: ignore[union-attr]
        finally:
            ro.close()
        assert writer.stats().ready_records == 2


def test_closed_spool_refuses_calls(tmp_path: Path) -> None:
    s = Spool(tmp_path / "s.db")
    s.close()
    s.close()  # idempotent
    with pytest.raises(SpoolClosedError):
        s.append(entry(1), dest="d")
    with pytest.raises(SpoolClosedError):
        s.stats()
    assert "closed" in repr(s)


def test_persist_queue_readers_work_and_per_record_mutators_refuse(spool: Spool) -> None:
    for i in range(3):
        spool.append(entry(i), dest="d")
    lease_all(spool, n=1)
    store = spool._store
    assert isinstance(store, SQLiteAckQueue)
    assert isinstance(store, SpoolQueue)
    rows = store.queue()
    assert [(r["id"], seq_of(r["data"]), r["status"]) for r in rows] == [
        (1, 0, 2),
        (2, 1, 1),
        (3, 2, 1),
    ]
    assert (store.ready_count(), store.unack_count(), store.size) == (2, 1, 2)
    for name in ("put", "get", "ack", "nack", "ack_failed", "update", "resume_unack_tasks"):
        with pytest.raises(NotImplementedError, match="replaced in yai-spool"):
            getattr(store, name)(1) if name not in ("get", "resume_unack_tasks") else getattr(
                store, name
            )()
    spool.vacuum()  # persist-queue's shrink_disk_usage under our lock
    assert spool.stats().ready_records == 2


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="max_records"):
        SpoolConfig(max_records=0)
    with pytest.raises(TypeError, match="max_bytes"):
        SpoolConfig(max_bytes=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="WhenFull"):
        SpoolConfig(when_full="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Synchronous"):
        SpoolConfig(synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integrity_check"):
        SpoolConfig(integrity_check="full")
    assert SpoolConfig(synchronous="full").synchronous == "FULL"  # type: ignore[arg-type]
