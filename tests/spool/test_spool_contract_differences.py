"""The documented differences of the spool backends (``SpoolBackend``'s docstring), tested.

Durability at close, calls after close, DEAD records and the bounds, replay into a full queue,
lease ownership and ``high_water``: once per backend, by name (the ``durable`` / ``memory``
fixtures of ``conftest.py``), so a difference is a tested statement rather than a skipped
case.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from contract_support import DEADLINE, LONG, Backend, drain, fill, lease, seqs
from spool_support import entry

from yai_spool.spool import SpoolBackend, SpoolClosedError, SpoolFull, WhenFull
from yai_spool.spool.memory import MemorySpool

# --- documented differences, one test per backend -----------------------------------------------


def test_durable_close_keeps_every_record_for_the_next_open(durable: Backend) -> None:
    spool = durable.open()
    fill(spool, 4)
    spool.dead_letter(lease(spool, n=1), error_code="E", message=None, request_id=None)
    lease(spool, n=1, ttl=10)  # still LEASED at close
    assert spool.close() is None
    again = durable.open()
    stats = again.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (2, 1, 1)
    assert dict(stats.dropped) == {}
    durable.clock.advance(10)  # the lease left behind expires like any other
    batch = lease(again)
    assert (seqs(batch), batch.attempts) == ([1, 2, 3], (1, 0, 0))


def test_memory_close_loses_the_queue_and_counts_it(memory: Backend) -> None:
    spool = memory.open_concrete()
    assert isinstance(spool, MemorySpool)
    fill(spool, 4)
    spool.dead_letter(lease(spool, n=1), error_code="E", message=None, request_id=None)
    lease(spool, n=1)
    assert spool.close() == 3  # READY + LEASED; dead letters are not queued
    assert spool.close() == 0
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records) == (0, 0)
    assert dict(stats.dropped) == {"unsent_at_close": 3}


def _calls_after_close(batch_ids: list[int]) -> dict[str, Callable[[SpoolBackend], object]]:
    return {
        "lease": lambda s: s.lease(1, 1 << 20, lease_seconds=LONG),
        "ack": lambda s: s.ack(batch_ids),
        "release": lambda s: s.release(batch_ids),
        "dead_letter": lambda s: s.dead_letter(
            batch_ids, error_code="E", message=None, request_id=None
        ),
        "high_water": lambda s: s.high_water(),
        "pending_through": lambda s: s.pending_through(1 << 30),
        "dead_letters": lambda s: s.dead_letters(),
        "replay_dead": lambda s: s.replay_dead(),
        "checkpoint": lambda s: s.checkpoint(),
        "stats": lambda s: s.stats(),
        "acquire_flusher": lambda s: s.acquire_flusher(),
    }


def test_durable_calls_after_close_raise(durable: Backend) -> None:
    spool = durable.open()
    spool.append(entry(0), dest="d")
    batch = lease(spool)
    spool.close()
    for name, call in _calls_after_close(list(batch.ids)).items():
        try:
            call(spool)
        except SpoolClosedError:
            continue
        pytest.fail(f"{name}() after close did not raise SpoolClosedError")
    spool.release_flusher()  # giving up a role it does not hold never fails


def test_memory_calls_after_close_see_an_empty_queue(memory: Backend) -> None:
    spool = memory.open()
    spool.append(entry(0), dest="d")
    batch = lease(spool)
    spool.close()
    calls = _calls_after_close(list(batch.ids))
    assert calls["lease"](spool) is None
    for name in ("ack", "release", "dead_letter", "pending_through"):
        assert calls[name](spool) == 0, name
    with pytest.raises(SpoolClosedError):
        calls["replay_dead"](spool)  # would queue records nobody will ship
    with pytest.raises(SpoolClosedError):
        spool.append(entry(1), dest="d")
    stats = spool.stats()
    assert dict(stats.dropped) == {"unsent_at_close": 1, "closed": 1}
    assert stats.appended == 1


def test_durable_dead_records_count_against_the_bounds_and_are_evicted_first(
    durable: Backend,
) -> None:
    spool = durable.open(max_records=3)
    fill(spool, 3)
    spool.dead_letter(lease(spool, n=1), error_code="E", message=None, request_id=None)
    spool.append(entry(3), dest="d")  # full: the DEAD record goes first
    assert spool.stats().dead_records == 0
    spool.append(entry(4), dest="d")  # then the oldest READY one
    assert dict(spool.stats().dropped) == {"drop_oldest": 2}
    assert drain(spool) == [2, 3, 4]


def test_durable_dead_records_fill_the_spool_for_drop_newest(durable: Backend) -> None:
    spool = durable.open(max_records=2, when_full="drop_newest")
    fill(spool, 2)
    spool.dead_letter(lease(spool), error_code="E", message=None, request_id=None)
    with pytest.raises(SpoolFull):  # two DEAD records fill it
        spool.append(entry(2), dest="d")
    assert spool.replay_dead() == 2
    assert drain(spool) == [0, 1]


def test_memory_dead_letters_are_kept_apart_and_bounded(memory: Backend) -> None:
    spool = memory.open(max_records=2, max_dead_letters=2, when_full="drop_newest")
    fill(spool, 2)
    spool.dead_letter(lease(spool), error_code="E", message=None, request_id=None)
    for i in range(2, 4):
        spool.append(entry(i), dest="d")  # dead letters take no room in the queue
    spool.dead_letter(lease(spool, n=1), error_code="E", message=None, request_id=None)
    assert [d.entry for d in spool.dead_letters()] == [entry(1), entry(2)]  # 0 forgotten
    stats = spool.stats()
    assert (stats.dead_records, stats.dead_lettered) == (2, 3)
    assert dict(stats.dropped) == {"dead_evicted": 1}


def test_durable_replay_into_a_full_spool_is_never_refused(durable: Backend) -> None:
    spool = durable.open(max_records=3, when_full="drop_newest")
    fill(spool, 3)
    spool.dead_letter(lease(spool, n=1), error_code="E", message=None, request_id=None)
    with pytest.raises(SpoolFull):
        spool.append(entry(3), dest="d")
    assert spool.replay_dead() == 1  # the DEAD record was already counted against the bounds
    stats = spool.stats()
    assert (stats.ready_records, stats.dead_records) == (3, 0)
    assert dict(stats.dropped) == {"drop_newest": 1}


@pytest.mark.parametrize("policy", list(WhenFull))
def test_memory_replay_moves_what_fits_and_keeps_the_rest_dead(
    memory: Backend, policy: WhenFull
) -> None:
    spool = memory.open(max_records=2, when_full=policy, block_timeout=DEADLINE)
    fill(spool, 2)
    spool.dead_letter(lease(spool, n=1), error_code="E", message=None, request_id=None)
    spool.append(entry(2), dest="d")  # the queue is full again: 1, 2
    started = time.monotonic()
    assert spool.replay_dead() == 0  # no room: nothing lost, nothing evicted, no wait
    assert time.monotonic() - started < DEADLINE / 2
    stats = spool.stats()
    assert (stats.dead_records, stats.replayed, dict(stats.dropped)) == (1, 0, {})
    spool.ack(lease(spool, n=1))
    assert spool.replay_dead() == 1
    stats = spool.stats()
    assert (stats.dead_records, stats.replayed, stats.appended) == (0, 1, 3)
    assert drain(spool) == [2, 0]


def test_durable_acquire_reverts_other_handles_leases_only(durable: Backend) -> None:
    dead_owner, flusher = durable.open(), durable.open()  # two handles on one file
    fill(flusher, 3)
    theirs = lease(dead_owner, n=1)
    mine = lease(flusher, n=1)
    assert flusher.acquire_flusher()
    stats = flusher.stats()
    assert (stats.leased_records, stats.leases_recovered) == (1, 1)  # only theirs reverted
    assert dead_owner.ack(theirs) == 0
    batch = lease(flusher)
    assert (seqs(batch), batch.attempts) == ([0, 2], (1, 0))
    assert flusher.ack(mine) == 1


def test_memory_acquire_reverts_leases_left_from_before(memory: Backend) -> None:
    spool = memory.open()
    fill(spool, 2)
    before = lease(spool, n=1)  # leased by a flusher that is gone
    assert spool.acquire_flusher()
    stats = spool.stats()
    assert (stats.leased_records, stats.leases_recovered) == (0, 1)
    assert spool.ack(before) == 0
    batch = lease(spool)
    assert (seqs(batch), batch.attempts) == ([0, 1], (1, 0))


def test_durable_high_water_is_the_largest_queued_id(durable: Backend) -> None:
    spool = durable.open()
    fill(spool, 2)
    batch = lease(spool)
    assert spool.high_water() == max(batch.ids)
    spool.ack(batch)
    assert spool.high_water() == 0  # nothing queued


def test_memory_high_water_is_the_last_id_handed_out(memory: Backend) -> None:
    spool = memory.open()
    fill(spool, 2)
    ids = lease(spool).ids
    spool.ack(list(ids))
    assert spool.high_water() == max(ids)  # kept after the queue emptied
    spool.append(entry(2), dest="d")
    assert lease(spool).ids == (max(ids) + 1,)  # never reused
