"""MemorySpool: the durable spool's flusher-facing contract, in memory, bounded."""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
from modes_support import DEADLINE, wait_until

from yai_spool.destination import encode_dest
from yai_spool.memspool import MemorySpool, MemorySpoolConfig
from yai_spool.spool import SpoolClosedError, SpoolFull, SpoolRecordTooLarge

DEST_A = encode_dest("proj-a", "store-a")
DEST_B = encode_dest("proj-b", "store-b")


def entry(i: int, size: int = 0) -> dict[str, object]:
    return {"time": 1_700_000_000, "time_ns": 0, "contents": [["n", str(i)], ["pad", "x" * size]]}


def numbers(batch: object) -> list[int]:
    return [int(e["contents"][0][1]) for e in batch.entries]  # type: ignore[attr-defined]


def lease(spool: MemorySpool, n: int = 100, nbytes: int = 1 << 20) -> Any:
    return spool.lease(n, nbytes, lease_seconds=60)


def test_fifo_per_destination_and_settling() -> None:
    spool = MemorySpool()
    for i in range(3):
        spool.append(entry(i), dest=DEST_A)
    spool.append(entry(100), dest=DEST_B)
    spool.append(entry(3), dest=DEST_A)
    first = lease(spool)
    assert first.dest == DEST_A  # the oldest record picks the destination
    assert numbers(first) == [0, 1, 2, 3]
    second = lease(spool)
    assert (second.dest, numbers(second)) == (DEST_B, [100])
    assert lease(spool) is None
    assert spool.ack(first, request_id="req-1") == 4
    assert spool.ack(first) == 0  # settled already: moves nothing
    assert spool.pending_through(spool.high_water()) == 1
    spool.release(second, error_code="ServerBusy", message="busy", status=503)
    again = lease(spool)
    assert numbers(again) == [100]
    assert again.attempts == (1,)
    stats = spool.stats()
    assert (stats.appended, stats.delivered, stats.retried) == (5, 4, 1)
    assert stats.last_success_request_id == "req-1"
    assert stats.last_error is not None
    assert (stats.last_error.code, stats.last_error.status) == ("ServerBusy", 503)


def test_released_records_go_back_in_id_order_and_parts_settle_alone() -> None:
    spool = MemorySpool()
    for i in range(10):
        spool.append(entry(i), dest=DEST_A)
    a = lease(spool, 4)
    b = lease(spool, 4)
    spool.release(a, count_attempt=False)  # out of order: the older batch first
    spool.release(b)
    batch = lease(spool, 10)
    assert numbers(batch) == list(range(10))
    assert batch.attempts == (0,) * 4 + (1,) * 4 + (0,) * 2
    # A bisection settles halves of one lease separately.
    spool.ack(batch[:5])
    spool.dead_letter(batch[5:6], error_code="InvalidParameter", message="bad", request_id="r")
    spool.release(list(batch.ids[6:]))
    stats = spool.stats()
    assert (stats.delivered, stats.dead_records, stats.ready_records) == (5, 1, 4)
    assert [d.original_id for d in spool.dead_letters()] == [batch.ids[5]]


def test_drop_oldest_evicts_ready_never_leased() -> None:
    spool = MemorySpool(MemorySpoolConfig(max_records=3))
    for i in range(3):
        spool.append(entry(i), dest=DEST_A)
    leased = lease(spool, 1)  # record 0 is leased: it must survive
    spool.append(entry(3), dest=DEST_A)
    spool.append(entry(4), dest=DEST_A)
    assert spool.stats().dropped == {"drop_oldest": 2}
    spool.release(leased)
    assert numbers(lease(spool)) == [0, 3, 4]


def test_drop_newest_and_too_large_are_counted_by_reason() -> None:
    config = MemorySpoolConfig(max_records=2, when_full="drop_newest", max_record_bytes=500)
    spool = MemorySpool(config)
    spool.append(entry(0), dest=DEST_A)
    spool.append(entry(1), dest=DEST_A)
    with pytest.raises(SpoolFull) as full:
        spool.append(entry(2), dest=DEST_A)
    assert full.value.reason == "drop_newest"
    with pytest.raises(SpoolRecordTooLarge):
        spool.append(entry(3, size=1000), dest=DEST_A)
    assert spool.stats().dropped == {"drop_newest": 1, "too_large": 1}
    assert numbers(lease(spool)) == [0, 1]


def test_block_waits_for_room_then_times_out() -> None:
    spool = MemorySpool(MemorySpoolConfig(max_records=1, when_full="block", block_timeout=DEADLINE))
    spool.append(entry(0), dest=DEST_A)
    batch = lease(spool)
    done = threading.Event()

    def producer() -> None:
        spool.append(entry(1), dest=DEST_A)  # waits until the ack below makes room
        done.set()

    thread = threading.Thread(target=producer)
    thread.start()
    assert wait_until(lambda: spool._waiting == 1)
    assert not done.is_set()
    spool.ack(batch)
    assert done.wait(DEADLINE)
    thread.join(DEADLINE)
    impatient = MemorySpool(MemorySpoolConfig(max_records=1, when_full="block", block_timeout=0.01))
    impatient.append(entry(0), dest=DEST_A)
    with pytest.raises(SpoolFull) as full:
        impatient.append(entry(1), dest=DEST_A)
    assert full.value.reason == "full_timeout"


def test_dead_letters_are_bounded() -> None:
    spool = MemorySpool(MemorySpoolConfig(max_dead_letters=2))
    for i in range(3):
        spool.append(entry(i), dest=DEST_A)
    batch = lease(spool)
    spool.dead_letter(batch, error_code="InvalidParameter", message="no", request_id=None)
    assert [d.entry["contents"][0][1] for d in spool.dead_letters()] == ["1", "2"]
    assert spool.stats().dropped == {"dead_evicted": 1}
    assert spool.replay_dead() == 2
    assert numbers(lease(spool)) == [1, 2]


def test_expired_leases_and_a_new_flusher_recover_records() -> None:
    now = [1000.0]
    spool = MemorySpool(clock=lambda: now[0])
    spool.append(entry(0), dest=DEST_A)
    assert spool.lease(10, 1 << 20, lease_seconds=5) is not None
    now[0] += 6
    again = lease(spool)
    assert numbers(again) == [0]
    assert again.attempts == (1,)
    assert spool.acquire_flusher()
    assert spool.acquire_flusher()  # already the flusher: True, and no lease reverts
    assert spool.stats().leases_recovered == 2  # expiry + the new flusher's recovery
    spool.release_flusher()
    assert not spool.is_flusher


def test_close_counts_what_is_lost() -> None:
    spool = MemorySpool()
    for i in range(5):
        spool.append(entry(i), dest=DEST_A)
    lease(spool, 2)
    assert spool.close() == 5
    assert spool.close() == 0
    with pytest.raises(SpoolClosedError):
        spool.append(entry(9), dest=DEST_A)
    assert spool.stats().dropped == {"unsent_at_close": 5, "closed": 1}
    assert lease(spool) is None


def _child_view(spool: MemorySpool, conn: multiprocessing.connection.Connection) -> None:
    spool.append(entry(99), dest=DEST_A)
    batch = lease(spool)
    conn.send(numbers(batch))  # only its own record: the parent's belong to the parent


def test_a_forked_child_starts_empty() -> None:
    spool = MemorySpool()
    spool.append(entry(1), dest=DEST_A)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_view, args=(spool, child))
    proc.start()
    assert parent.poll(DEADLINE)
    assert parent.recv() == [99]
    proc.join(DEADLINE)
    assert numbers(lease(spool)) == [1]
