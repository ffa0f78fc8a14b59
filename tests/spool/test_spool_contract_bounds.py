"""The spool contract, continued: expiry, the flusher role, bounds, ``when_full``, counters.

Run against every backend like ``test_spool_contract.py`` (see there). Lease expiry is driven
by the injected clock (one test also by the real clock with a short ``lease_seconds`` and a
poll); ``block`` by events and polls with a deadline, never a sleep.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from typing import Any

import pytest
from contract_support import (
    DEADLINE,
    LONG,
    Backend,
    drain,
    fill,
    lease,
    parked_producers,
    seqs,
    size,
    wait_until,
)
from spool_support import entry

from yai_spool.spool import (
    CheckpointResult,
    SpoolBackend,
    SpoolClosedError,
    SpoolDropped,
    SpoolEncodeError,
    SpoolFull,
    SpoolRecordTooLarge,
    WhenFull,
)
from yai_spool.spool.schema import encode_stored

# --- lease expiry and the flusher role ------------------------------------------------------------


def test_an_expired_lease_reverts_at_the_next_lease(spool: SpoolBackend, backend: Backend) -> None:
    spool.append(entry(0), dest="d")
    first = spool.lease(10, 1 << 20, lease_seconds=5)
    assert first is not None
    backend.clock.advance(4)
    assert spool.lease(10, 1 << 20, lease_seconds=5) is None  # not yet expired
    backend.clock.advance(1)  # now == lease_until: expired
    again = lease(spool, ttl=5)
    assert (seqs(again), again.attempts) == ([0], (1,))
    assert again.lease_until == backend.clock.now + 5
    stats = spool.stats()
    assert (stats.leases_recovered, stats.retried) == (1, 0)  # an expiry is not a release


def test_an_expired_lease_reverts_by_the_real_clock(backend: Backend) -> None:
    spool = backend.open(clock=time.time)
    spool.append(entry(0), dest="d")
    assert spool.lease(1, 1 << 20, lease_seconds=0.05) is not None
    leased: list[Any] = []

    def expired() -> bool:
        leased.append(spool.lease(1, 1 << 20, lease_seconds=LONG))
        return leased[-1] is not None

    assert wait_until(expired)
    assert (seqs(leased[-1]), leased[-1].attempts) == ([0], (1,))


def test_acquire_flusher_is_idempotent_and_keeps_the_holders_leases(
    spool: SpoolBackend,
) -> None:
    assert not spool.is_flusher
    assert spool.acquire_flusher()
    assert spool.is_flusher
    assert spool.stats().flusher_pid == os.getpid()
    fill(spool, 2)
    mine = lease(spool)
    assert spool.acquire_flusher()  # already the flusher: still True
    stats = spool.stats()
    assert (stats.leased_records, stats.leases_recovered) == (2, 0)
    assert spool.ack(mine) == 2
    spool.append(entry(2), dest="d")
    held = lease(spool)
    spool.release_flusher()
    spool.release_flusher()  # idempotent
    assert not spool.is_flusher
    stats = spool.stats()
    assert (stats.flusher_pid, stats.leased_records) == (None, 1)  # leases outlive the role
    assert spool.ack(held) == 1


# --- bounds and when_full -----------------------------------------------------------------------


def test_a_record_above_max_record_bytes_is_too_large(backend: Backend) -> None:
    spool = backend.open(max_record_bytes=500)
    spool.append(entry(0), dest="d")
    with pytest.raises(SpoolRecordTooLarge) as big:
        spool.append(entry(1, pad=600), dest="d")
    assert big.value.reason == "too_large"
    assert isinstance(big.value, SpoolDropped)
    with pytest.raises(SpoolRecordTooLarge):
        spool.append_log(b"\x00" * 501, dest="d")
    stats = spool.stats()
    assert (dict(stats.dropped), stats.appended) == ({"too_large": 2}, 1)
    assert drain(spool) == [0]


def test_a_record_above_max_bytes_is_too_large_and_evicts_nothing(backend: Backend) -> None:
    spool = backend.open(max_bytes=300, max_record_bytes=10_000)
    spool.append(entry(0), dest="d")
    with pytest.raises(SpoolRecordTooLarge):
        spool.append(entry(1, pad=400), dest="d")
    assert dict(spool.stats().dropped) == {"too_large": 1}
    assert drain(spool) == [0]


BAD_ENTRIES: dict[str, dict[str, Any]] = {
    "no-time": {"contents": [["k", "v"]]},
    "time-out-of-range": {"time": 2**32, "contents": [["k", "v"]]},
    "lone-surrogate": {"time": 1, "contents": [["k", "lone \udcff"]]},
    "not-text": {"time": 1, "contents": [["k", object()]]},
}


@pytest.mark.parametrize("bad", list(BAD_ENTRIES.values()), ids=list(BAD_ENTRIES))
def test_an_entry_that_cannot_be_encoded_is_an_encode_error(
    spool: SpoolBackend, bad: dict[str, Any]
) -> None:
    spool.append(entry(0), dest="d")
    with pytest.raises(SpoolEncodeError) as refused:
        spool.append(bad, dest="d")
    assert refused.value.reason == "encode_error"
    assert isinstance(refused.value, ValueError)
    assert isinstance(refused.value, SpoolDropped)
    stats = spool.stats()
    assert (dict(stats.dropped), stats.appended) == ({"encode_error": 1}, 1)
    assert drain(spool) == [0]


def test_drop_newest_refuses_the_new_record(backend: Backend) -> None:
    spool = backend.open(max_records=3, when_full="drop_newest")
    fill(spool, 3)
    with pytest.raises(SpoolFull) as full:
        spool.append(entry(3), dest="d")
    assert full.value.reason == "drop_newest"
    spool.ack(lease(spool, n=1))
    spool.append(entry(4), dest="d")  # room again
    stats = spool.stats()
    assert (dict(stats.dropped), stats.appended) == ({"drop_newest": 1}, 4)
    assert drain(spool) == [1, 2, 4]


def test_drop_newest_by_bytes(backend: Backend) -> None:
    one = size(entry(0))
    spool = backend.open(max_bytes=3 * one, when_full="drop_newest")
    fill(spool, 3)  # exactly max_bytes: fits
    with pytest.raises(SpoolFull):
        spool.append(entry(3), dest="d")
    assert dict(spool.stats().dropped) == {"drop_newest": 1}
    assert drain(spool) == [0, 1, 2]


def test_drop_oldest_evicts_the_oldest_ready_of_any_destination(backend: Backend) -> None:
    spool = backend.open(max_records=3)
    for i, dest in enumerate("aba"):
        spool.append(entry(i), dest=dest)
    spool.append(entry(3), dest="b")  # evicts record 0 (a)
    spool.append(entry(4), dest="a")  # evicts record 1 (b)
    stats = spool.stats()
    assert (dict(stats.dropped), stats.ready_records, stats.appended) == (
        {"drop_oldest": 2}, 3, 5,
    )  # fmt: skip
    first = lease(spool)
    assert (first.dest, seqs(first)) == ("a", [2, 4])
    assert seqs(lease(spool)) == [3]


def test_drop_oldest_never_evicts_leased_records(backend: Backend) -> None:
    spool = backend.open(max_records=3)
    fill(spool, 3)
    held = lease(spool, n=1)
    spool.append(entry(3), dest="d")  # evicts 1, not the leased 0
    spool.append(entry(4), dest="d")  # evicts 2
    rest = lease(spool)
    assert seqs(rest) == [3, 4]
    with pytest.raises(SpoolFull) as full:  # everything is in flight: nothing to evict
        spool.append(entry(5), dest="d")
    assert full.value.reason == "drop_newest"
    assert dict(spool.stats().dropped) == {"drop_oldest": 2, "drop_newest": 1}
    assert spool.ack(held) == 1
    assert spool.ack(rest) == 2
    spool.append(entry(6), dest="d")
    assert drain(spool) == [6]


def test_drop_oldest_by_bytes_evicts_exactly_what_the_new_record_needs(backend: Backend) -> None:
    limit = 20_000
    spool = backend.open(max_bytes=limit)
    model: deque[tuple[int, int]] = deque()  # (seq, size) of what must be queued
    for i in range(300):
        e = entry(i, pad=i % 200)
        spool.append(e, dest="d")
        model.append((i, size(e)))
        while sum(s for _, s in model) > limit:
            model.popleft()
        assert spool.stats().ready_bytes == sum(s for _, s in model)
    stats = spool.stats()
    assert (dict(stats.dropped), stats.appended) == ({"drop_oldest": 300 - len(model)}, 300)
    assert drain(spool) == [seq for seq, _ in model]


def test_block_refuses_as_full_timeout_after_block_timeout(backend: Backend) -> None:
    spool = backend.open(max_records=1, when_full="block", block_timeout=0.05)
    spool.append(entry(0), dest="d")
    started = time.monotonic()
    with pytest.raises(SpoolFull) as full:
        spool.append(entry(1), dest="d")
    assert time.monotonic() - started >= 0.05
    assert full.value.reason == "full_timeout"
    assert dict(spool.stats().dropped) == {"full_timeout": 1}
    assert drain(spool) == [0]


def _blocked_append(spool: SpoolBackend, seq: int) -> tuple[threading.Thread, list[object]]:
    """A producer thread appending ``seq``; its outcome ("stored" or the exception) lands in
    the returned list once it is done."""
    outcome: list[object] = []

    def producer() -> None:
        try:
            spool.append(entry(seq), dest="d")
            outcome.append("stored")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=producer, daemon=True)
    thread.start()
    assert wait_until(lambda: parked_producers(spool) == 1), "the producer never blocked"
    return thread, outcome


def test_block_is_woken_by_an_ack(backend: Backend) -> None:
    spool = backend.open(max_records=1, when_full="block", block_timeout=DEADLINE)
    spool.append(entry(0), dest="d")
    batch = lease(spool)
    thread, outcome = _blocked_append(spool, 1)
    assert outcome == []  # parked, not refused
    spool.ack(batch)
    thread.join(DEADLINE)
    assert outcome == ["stored"]
    assert dict(spool.stats().dropped) == {}
    assert drain(spool) == [1]


def test_close_ends_a_blocked_append_with_spool_closed_error(backend: Backend) -> None:
    spool = backend.open(max_records=1, when_full="block", block_timeout=DEADLINE)
    spool.append(entry(0), dest="d")
    thread, outcome = _blocked_append(spool, 1)
    started = time.monotonic()
    spool.close()
    thread.join(DEADLINE)
    assert len(outcome) == 1
    assert isinstance(outcome[0], SpoolClosedError)
    assert time.monotonic() - started < DEADLINE / 2  # ended by the close, not the timeout


@pytest.mark.parametrize("policy", list(WhenFull))
def test_every_record_that_is_not_kept_is_counted_under_one_reason(
    backend: Backend, policy: WhenFull
) -> None:
    spool = backend.open(max_records=3, max_record_bytes=400, when_full=policy, block_timeout=0.01)
    offered = [entry(i) for i in range(8)] + [entry(8, pad=500), BAD_ENTRIES["not-text"]]
    raised: Counter[str] = Counter()
    for e in offered:
        try:
            spool.append(e, dest="d")
        except SpoolDropped as exc:
            raised[exc.reason] += 1
    stats = spool.stats()
    dropped = dict(stats.dropped)
    assert stats.ready_records == 3
    assert sum(dropped.values()) == len(offered) - 3  # each record kept or counted once
    # Every exception is counted under its reason; only evictions happen without one.
    assert {k: v for k, v in dropped.items() if k != "drop_oldest"} == dict(raised)
    expected = {
        WhenFull.DROP_OLDEST: {"drop_oldest": 5},
        WhenFull.DROP_NEWEST: {"drop_newest": 5},
        WhenFull.BLOCK: {"full_timeout": 5},
    }[policy]
    assert dropped == {**expected, "too_large": 1, "encode_error": 1}
    kept = [5, 6, 7] if policy is WhenFull.DROP_OLDEST else [0, 1, 2]
    assert drain(spool) == kept


# --- counters and draining ----------------------------------------------------------------------


def test_stats_count_records_bytes_and_leases(spool: SpoolBackend, backend: Backend) -> None:
    start = backend.clock.now
    for i in range(5):
        spool.append(entry(i), dest="a" if i < 3 else "b")
        backend.clock.advance(1)
    first, second = lease(spool, n=2), lease(spool, n=1)
    assert seqs(first) + seqs(second) == [0, 1, 2]
    assert (first.enqueued_at, first.oldest_enqueued_at) == ((start, start + 1), start)
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.active_leases) == (2, 3, 2)
    assert stats.ready_bytes == size(entry(3)) + size(entry(4))
    assert stats.leased_bytes == first.nbytes + second.nbytes
    assert (stats.dead_records, stats.dead_bytes, stats.appended) == (0, 0, 5)
    assert stats.oldest_ready_enqueued_at == start + 3
    spool.release(second)
    stats = spool.stats()
    assert stats.oldest_ready_enqueued_at == start + 2  # by id, whatever the destination
    assert (stats.ready_records, stats.active_leases) == (3, 1)
    assert dict(stats.dropped) == {}


def test_high_water_and_pending_through_track_what_was_appended_before(
    spool: SpoolBackend,
) -> None:
    assert spool.pending_through(spool.high_water()) == 0
    fill(spool, 4)
    mark = spool.high_water()
    spool.append(entry(4), dest="d")  # after the mark, while records are queued: a newer id
    assert spool.pending_through(mark) == 4
    batch = lease(spool, n=3)
    assert spool.pending_through(mark) == 4  # LEASED is still pending
    spool.dead_letter(batch[:1], error_code="E", message=None, request_id=None)
    assert spool.pending_through(mark) == 3  # DEAD is not
    spool.ack(batch)
    assert spool.pending_through(mark) == 1
    drain(spool)
    assert spool.pending_through(mark) == 0
    assert spool.pending_through(spool.high_water()) == 0


def test_checkpoint_takes_the_wal_modes_on_any_backend(spool: SpoolBackend) -> None:
    spool.append(entry(0), dest="d")
    for mode in ("PASSIVE", "FULL", "RESTART", "TRUNCATE", "passive"):
        result = spool.checkpoint(mode)
        assert isinstance(result, CheckpointResult)
        assert not result.busy, mode  # nobody else uses the spool
    assert spool.checkpoint().busy is False  # PASSIVE by default
    with pytest.raises(ValueError, match="checkpoint mode"):
        spool.checkpoint("SOMETIMES")


def test_close_is_idempotent_and_refuses_appends(spool: SpoolBackend) -> None:
    spool.append(entry(0), dest="d")
    spool.close()
    spool.close()
    with pytest.raises(SpoolClosedError):
        spool.append(entry(1), dest="d")
    with pytest.raises(SpoolClosedError):
        spool.append_log(encode_stored(entry(2)), dest="d")
