"""The spool contract (``yai_spool.spool.backend``), written once, run against every backend.

Each test in the first part takes the parametrised ``spool`` / ``backend`` fixtures and runs
twice: on a real SQLite ``Spool`` in ``tmp_path`` and on a ``MemorySpool``, configured alike
(``contract_support.Backend``) and driven by the same fake clock. A test here states one
promise of ``SpoolBackend``'s docstring; nothing in it may depend on which backend runs it.

The last part tests the documented differences (durability at close, calls after close, DEAD
records and the bounds, replay into a full queue, lease ownership, ``high_water``) once per
backend, by name, so a difference is a tested statement rather than a skipped case.

Lease expiry is driven by the injected clock (one test also by the real clock with a short
``lease_seconds`` and a poll); ``block`` by events and polls with a deadline, never a sleep.
"""

from __future__ import annotations

import inspect
import os
import textwrap
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from contract_support import (
    DEADLINE,
    KINDS,
    LONG,
    Backend,
    backend_for,
    drain,
    fill,
    lease,
    parked_producers,
    seqs,
    size,
    wait_until,
)
from spool_support import REPO_ROOT, entry

from yai_spool.spool import (
    CheckpointResult,
    Spool,
    SpoolBackend,
    SpoolClosedError,
    SpoolDropped,
    SpoolEncodeError,
    SpoolFull,
    SpoolRecordTooLarge,
    WhenFull,
)
from yai_spool.spool.memory import MemorySpool
from yai_spool.spool.schema import encode_stored


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Spools of one kind (``sqlite``, ``memory``) sharing the test's fake clock."""
    yield from backend_for(request.param, tmp_path)


@pytest.fixture
def spool(backend: Backend) -> SpoolBackend:
    """A spool with the default bounds (large enough never to be reached)."""
    return backend.open()


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[Backend]:
    yield from backend_for("sqlite", tmp_path)


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Backend]:
    yield from backend_for("memory", tmp_path)


# --- conformance --------------------------------------------------------------------------------


def test_the_backend_has_every_member_of_the_protocol(spool: SpoolBackend) -> None:
    assert isinstance(spool, SpoolBackend)  # runtime_checkable: the members exist


def _accepts(proto: inspect.Signature, impl: inspect.Signature) -> list[str]:
    """Why a call written against ``proto`` could fail on ``impl`` (empty: it cannot)."""
    problems = []
    params = dict(impl.parameters)
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    for name, want in list(proto.parameters.items())[1:]:  # skip self
        have = params.pop(name, None)
        if have is None:
            if not (var_kw and want.kind is want.KEYWORD_ONLY):
                problems.append(f"no parameter {name!r}")
            continue
        if want.kind is want.KEYWORD_ONLY and have.kind not in (
            have.KEYWORD_ONLY,
            have.POSITIONAL_OR_KEYWORD,
        ):
            problems.append(f"{name!r} cannot be passed by keyword")
        if want.kind is want.POSITIONAL_OR_KEYWORD and have.kind is not want.kind:
            problems.append(f"{name!r} is {have.kind.description}, not positional-or-keyword")
        if want.default is not want.empty and have.default is have.empty:
            problems.append(f"{name!r} has no default")
    problems += [
        f"extra parameter {name!r} without a default"
        for name, extra in list(params.items())[1:]
        if extra.default is extra.empty
        and extra.kind not in (extra.VAR_POSITIONAL, extra.VAR_KEYWORD)
    ]
    return problems


@pytest.mark.parametrize("cls", [Spool, MemorySpool], ids=KINDS)
def test_every_call_the_protocol_allows_is_accepted(cls: type) -> None:
    members = [name for name in vars(SpoolBackend) if not name.startswith("_")]
    assert len(members) == 16  # the scan found every member (see the protocol)
    for name in members:
        proto, impl = vars(SpoolBackend)[name], inspect.getattr_static(cls, name)
        if isinstance(proto, property):
            assert isinstance(impl, property), f"{cls.__name__}.{name} is not a property"
            continue
        problems = _accepts(inspect.signature(proto), inspect.signature(impl))
        assert problems == [], f"{cls.__name__}.{name}: {problems}"


def test_mypy_accepts_both_backends_and_rejects_a_drifted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The static check: both classes are ``SpoolBackend``s to mypy --strict; the control
    (a subclass whose ``lease`` lost a parameter) proves the check can fail."""
    api = pytest.importorskip("mypy.api")
    program = textwrap.dedent(
        """\
        from yai_spool.spool.memory import MemorySpool
        from yai_spool.spool import Batch, Spool, SpoolBackend


        class Drifted(MemorySpool):
            def lease(  # type: ignore[override]
                self, max_records: int, max_bytes: int
            ) -> Batch | None:
                return None


        def conforming(a: Spool, b: MemorySpool) -> list[SpoolBackend]:
            return [a, b]


        def drifted(c: Drifted) -> SpoolBackend:
            return c
        """
    )
    monkeypatch.chdir(REPO_ROOT)  # mypy finds yai_spool from the checkout
    cache = str(tmp_path / "mypy-cache")
    out, err, _ = api.run(
        ["--strict", "--follow-imports=silent", "--cache-dir", cache, "-c", program]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert len(errors) == 1, out + err
    assert errors[0].startswith("<string>:17:"), errors  # ``return c`` in drifted()
    assert '"Drifted"' in errors[0]
    assert "SpoolBackend" in errors[0]


# --- append and lease ---------------------------------------------------------------------------


def test_append_then_lease_returns_the_entries_as_stored(
    spool: SpoolBackend, backend: Backend
) -> None:
    now = backend.clock.now
    entries = [entry(i, pad=i) for i in range(5)]
    for e in entries:
        spool.append(e, dest="d")
    batch = lease(spool, ttl=30)
    assert batch.dest == "d"
    assert list(batch.entries) == entries
    assert list(batch.ids) == sorted(set(batch.ids))  # distinct, increasing
    assert batch.attempts == (0,) * 5
    assert batch.enqueued_at == (now,) * 5
    assert batch.oldest_enqueued_at == now
    assert batch.lease_until == now + 30
    assert batch.sizes == tuple(size(e) for e in entries)
    assert batch.nbytes == sum(batch.sizes)
    assert batch.logs == b"".join(encode_stored(e) for e in entries)
    assert spool.stats().appended == 5


def test_append_log_queues_the_stored_log_as_given(spool: SpoolBackend) -> None:
    data = encode_stored(entry(7))
    spool.append_log(data, dest="d", log_time=1_700_000_000, level="INFO", logger="app")
    spool.append_log(data, dest="d")
    batch = lease(spool)
    assert batch.logs == data + data
    assert seqs(batch) == [7, 7]
    assert spool.stats().appended == 2


def test_wrong_types_are_caller_bugs_not_drops(spool: SpoolBackend) -> None:
    with pytest.raises(TypeError):
        spool.append_log("text", dest="d")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        spool.append_log(b"x", dest=b"d")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        spool.append(entry(0), dest=b"d")  # type: ignore[arg-type]
    stats = spool.stats()
    assert (stats.appended, dict(stats.dropped)) == (0, {})


def test_lease_is_fifo_per_destination_of_the_oldest_ready(spool: SpoolBackend) -> None:
    for i, dest in enumerate("ababba"):
        spool.append(entry(i), dest=dest)
    first = lease(spool)
    assert (first.dest, seqs(first)) == ("a", [0, 2, 5])  # record 0 picks the destination
    second = lease(spool)
    assert (second.dest, seqs(second)) == ("b", [1, 3, 4])
    assert spool.lease(10, 1 << 20, lease_seconds=LONG) is None


def test_lease_limits_records_and_bytes_but_takes_at_least_one(spool: SpoolBackend) -> None:
    spool.append(entry(0, pad=5000), dest="d")
    for i in range(1, 7):
        spool.append(entry(i, pad=100), dest="d")
    one = size(entry(1, pad=100))
    assert seqs(spool.lease(10, 1000, lease_seconds=LONG)) == [0]  # alone above max_bytes
    assert seqs(spool.lease(10, 2 * one + 1, lease_seconds=LONG)) == [1, 2]
    assert seqs(spool.lease(10, 2 * one, lease_seconds=LONG)) == [3, 4]  # exactly max_bytes
    assert seqs(spool.lease(1, 1 << 20, lease_seconds=LONG)) == [5]
    assert seqs(spool.lease(10, 1 << 20, lease_seconds=LONG)) == [6]


def test_lease_returns_none_when_nothing_is_ready(spool: SpoolBackend) -> None:
    assert spool.lease(10, 1 << 20, lease_seconds=LONG) is None
    spool.append(entry(0), dest="d")
    lease(spool)
    assert spool.lease(10, 1 << 20, lease_seconds=LONG) is None  # everything is leased


@pytest.mark.parametrize(
    ("max_records", "max_bytes", "ttl"),
    [(0, 10, 1.0), (1, 0, 1.0), (1, 10, 0.0), (1, 10, -1.0)],
    ids=["no-records", "no-bytes", "zero-ttl", "negative-ttl"],
)
def test_lease_refuses_empty_limits(
    spool: SpoolBackend, max_records: int, max_bytes: int, ttl: float
) -> None:
    spool.append(entry(0), dest="d")
    with pytest.raises(ValueError, match="lease needs"):
        spool.lease(max_records, max_bytes, lease_seconds=ttl)
    assert spool.stats().leased_records == 0


def test_concurrent_appends_are_each_queued_once_in_order(spool: SpoolBackend) -> None:
    threads, per_thread = 4, 50
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def producer(t: int) -> None:
        try:
            start.wait(DEADLINE)
            for i in range(per_thread):
                spool.append(entry(t * 1000 + i), dest="d")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=producer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(DEADLINE)
    assert errors == []
    order = drain(spool)
    assert sorted(order) == sorted(t * 1000 + i for t in range(threads) for i in range(per_thread))
    for t in range(threads):  # one producer's records keep its order (ids increase)
        mine = [s for s in order if s // 1000 == t]
        assert mine == sorted(mine)
    assert spool.stats().appended == threads * per_thread


# --- settling -----------------------------------------------------------------------------------


def test_ack_forgets_the_records_and_counts_the_delivery(
    spool: SpoolBackend, backend: Backend
) -> None:
    fill(spool, 3)
    batch = lease(spool)
    backend.clock.advance(5)
    assert spool.ack(batch, request_id="req-1") == 3
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.active_leases) == (0, 0, 0)
    assert (stats.ready_bytes, stats.leased_bytes) == (0, 0)
    assert stats.delivered == 3
    assert (stats.last_success_at, stats.last_success_request_id) == (backend.clock.now, "req-1")
    backend.clock.advance(5)
    assert spool.ack(batch, request_id="req-2") == 0  # settled already: nothing moves
    stats = spool.stats()
    assert (stats.delivered, stats.last_success_request_id) == (3, "req-1")


def test_release_puts_records_back_in_place_with_one_more_attempt(
    spool: SpoolBackend, backend: Backend
) -> None:
    fill(spool, 3)
    batch = lease(spool, n=2)
    released = spool.release(
        batch, error_code="ServerBusy", message="busy", request_id="r9", status=503
    )
    assert released == 2
    again = lease(spool)
    assert seqs(again) == [0, 1, 2]  # released records are still the oldest
    assert again.attempts == (1, 1, 0)
    assert again.max_attempts == 1
    stats = spool.stats()
    assert stats.retried == 2
    assert stats.last_error is not None
    error = stats.last_error
    assert (error.code, error.message, error.request_id) == ("ServerBusy", "busy", "r9")
    assert (error.status, error.at) == (503, backend.clock.now)


def test_release_counts_records_and_the_failed_request_once(spool: SpoolBackend) -> None:
    """``retried`` counts records; ``retry_requests`` / ``throttled_requests`` the request."""
    fill(spool, 4)
    batch = lease(spool)
    assert spool.release(batch[:3], error_code="WriteQuotaExceed", message="q", throttled=True) == 3
    assert spool.release(batch[3:], error_code="ServerBusy", message="busy") == 1
    stats = spool.stats()
    assert (stats.retried, stats.retry_requests, stats.throttled_requests) == (4, 2, 1)
    assert spool.release(lease(spool)) == 4  # no error code: records only, no request
    stats = spool.stats()
    assert (stats.retried, stats.retry_requests, stats.throttled_requests) == (8, 2, 1)


def test_release_without_counting_an_attempt_or_an_error(spool: SpoolBackend) -> None:
    spool.append(entry(0), dest="d")
    assert spool.release(lease(spool), count_attempt=False) == 1
    assert lease(spool).attempts == (0,)
    stats = spool.stats()
    assert (stats.retried, stats.last_error) == (1, None)


def test_out_of_order_releases_go_back_in_id_order(spool: SpoolBackend) -> None:
    fill(spool, 10)
    older, newer = lease(spool, n=4), lease(spool, n=4)
    spool.release(older, count_attempt=False)  # the older batch back first: newer must merge
    spool.release(newer)
    batch = lease(spool)
    assert seqs(batch) == list(range(10))
    assert batch.attempts == (0,) * 4 + (1,) * 4 + (0,) * 2


def test_parts_of_a_batch_settle_alone(spool: SpoolBackend) -> None:
    fill(spool, 10)
    batch = lease(spool)
    assert spool.ack(batch[:4]) == 4  # a bisection settles halves of one lease separately
    assert spool.dead_letter(batch[4:5], error_code="E", message="m", request_id=None) == 1
    assert spool.release(batch.select([6, 8])) == 2
    assert spool.ack(batch) == 3  # the whole batch now holds only 5, 7 and 9
    stats = spool.stats()
    assert (stats.delivered, stats.dead_records, stats.ready_records) == (7, 1, 2)
    assert (stats.leased_records, stats.active_leases) == (0, 0)
    assert seqs(lease(spool)) == [6, 8]


def test_plain_ids_settle_any_lease_of_this_handle(spool: SpoolBackend) -> None:
    fill(spool, 4)
    first = lease(spool, n=2)
    assert spool.ack([first.ids[0]]) == 1
    assert spool.release([first.ids[1]]) == 1
    rest = lease(spool)
    assert seqs(rest) == [1, 2, 3]
    assert spool.dead_letter([rest.ids[0]], error_code="E", message=None, request_id=None) == 1
    assert spool.ack(list(rest.ids)) == 2  # only the ids the lease still holds
    assert spool.stats().delivered == 3


def test_plain_ids_of_several_leases_settle_in_one_call(spool: SpoolBackend) -> None:
    fill(spool, 6)
    a, b = lease(spool, n=3), lease(spool, n=3)
    assert spool.release([b.ids[0], a.ids[2], a.ids[0]]) == 3
    again = lease(spool)
    assert (seqs(again), again.attempts) == ([0, 2, 3], (1, 1, 1))  # back in id order
    # Plain ids name records, not a lease: whichever lease of this handle holds them now.
    assert spool.ack(list(a.ids) + list(b.ids)) == 6
    assert spool.stats().active_leases == 0


def test_a_lease_past_its_expiry_settles_until_the_next_lease_reverts_it(
    spool: SpoolBackend, backend: Backend
) -> None:
    fill(spool, 2)
    batch = lease(spool, ttl=5)
    backend.clock.advance(10)  # expired, but expiry is applied by the next lease()
    assert spool.ack(batch[:1]) == 1
    again = lease(spool)
    assert (seqs(again), again.attempts) == ([1], (1,))
    assert spool.ack(batch) == 0
    assert spool.stats().leases_recovered == 1


def test_ids_that_are_not_leased_do_not_move(spool: SpoolBackend) -> None:
    spool.append(entry(0), dest="d")
    spool.append(entry(1), dest="d")
    ready_id = spool.high_water()  # record 1's id: it stays READY below
    lease(spool, n=1)
    assert spool.ack([ready_id]) == 0
    assert spool.release([ready_id]) == 0
    assert spool.dead_letter([ready_id], error_code="E", message=None, request_id=None) == 0
    assert spool.ack([ready_id + 1000]) == 0  # no such record
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (1, 1, 0)


def test_a_stale_batch_moves_nothing_after_expiry_and_re_lease(
    spool: SpoolBackend, backend: Backend
) -> None:
    fill(spool, 3)
    stale = lease(spool, ttl=10)
    backend.clock.advance(10)  # lease_until <= now: expired
    fresh = lease(spool, ttl=10)
    assert fresh.ids == stale.ids
    assert fresh.attempts == (1, 1, 1)  # the expiry counts as an attempt
    assert spool.ack(stale) == 0
    assert spool.release(stale) == 0
    assert spool.dead_letter(stale, error_code="E", message=None, request_id=None) == 0
    stats = spool.stats()
    assert (stats.leased_records, stats.leases_recovered, stats.delivered) == (3, 3, 0)
    assert spool.ack(fresh) == 3


def test_settling_no_ids_moves_and_records_nothing(spool: SpoolBackend) -> None:
    spool.append(entry(0), dest="d")
    lease(spool)
    assert spool.ack([], request_id="r") == 0
    assert spool.release([], error_code="ServerBusy", message="busy", request_id="r") == 0
    assert spool.dead_letter([], error_code="InvalidParameter", message="m", request_id="r") == 0
    stats = spool.stats()
    assert stats.last_error is None
    assert (stats.delivered, stats.retried, stats.dead_lettered) == (0, 0, 0)
    assert stats.last_success_at is None
    assert stats.leased_records == 1


# --- dead letters -------------------------------------------------------------------------------


def test_dead_letter_keeps_the_record_with_its_error(spool: SpoolBackend, backend: Backend) -> None:
    clock = backend.clock
    for i in range(3):
        spool.append(entry(i), dest="d")
        clock.advance(1)
    batch = lease(spool)
    spool.release(batch[2:])  # record 2 is retried once before it dies
    clock.advance(10)
    moved = spool.dead_letter(
        batch[:1], error_code="InvalidLogSize", message="too big", request_id="r1",
        attempts=7, status=400,
    )  # fmt: skip
    assert moved == 1
    assert spool.dead_letter(batch[1:2], error_code="E2", message=None, request_id=None) == 1
    retried = lease(spool)
    assert spool.dead_letter(retried, error_code="E3", message="m", request_id=None) == 1
    dead = spool.dead_letters()
    assert [d.original_id for d in dead] == list(batch.ids)
    first = dead[0]
    assert (first.dest, first.entry, first.nbytes) == ("d", entry(0), size(entry(0)))
    assert (first.enqueued_at, first.dead_at) == (batch.enqueued_at[0], clock.now)
    assert (first.attempts, first.error_code, first.message, first.request_id) == (
        7, "InvalidLogSize", "too big", "r1",
    )  # fmt: skip
    assert (dead[1].attempts, dead[1].message, dead[1].request_id) == (1, None, None)
    assert dead[2].attempts == 2  # default: the record's attempts + 1
    stats = spool.stats()
    assert (stats.dead_records, stats.dead_bytes, stats.dead_lettered) == (
        3, sum(batch.sizes), 3,
    )  # fmt: skip
    assert (stats.ready_records, stats.leased_records) == (0, 0)
    assert stats.last_error is not None
    assert (stats.last_error.code, stats.last_error.status) == ("E3", None)


def test_dead_letters_of_a_reordered_part_are_kept_oldest_first(spool: SpoolBackend) -> None:
    """Settling goes in id order whatever order a part of a batch names its records in."""
    fill(spool, 3)
    batch = lease(spool)
    part = batch.select([2, 0, 1])
    assert spool.dead_letter(part, error_code="E", message=None, request_id=None) == 3
    assert [d.original_id for d in spool.dead_letters()] == sorted(batch.ids)


def test_dead_letters_page_oldest_first(spool: SpoolBackend) -> None:
    fill(spool, 5)
    batch = lease(spool)
    spool.dead_letter(batch, error_code="E", message=None, request_id=None)
    pages, after = [], 0
    while page := spool.dead_letters(2, after_id=after):
        pages.append([d.original_id for d in page])
        after = page[-1].id
    assert pages == [list(batch.ids[:2]), list(batch.ids[2:4]), list(batch.ids[4:])]
    assert spool.dead_letters(100, after_id=after) == []


def test_replay_requeues_dead_letters_at_the_tail(spool: SpoolBackend, backend: Backend) -> None:
    fill(spool, 4)
    spool.dead_letter(lease(spool, n=2), error_code="E", message=None, request_id=None)
    backend.clock.advance(50)
    assert spool.replay_dead() == 2
    stats = spool.stats()
    assert (stats.dead_records, stats.ready_records, stats.replayed) == (0, 4, 2)
    assert stats.appended == 4  # a replay is not an append
    assert spool.pending_through(spool.high_water()) == 4
    batch = lease(spool)
    assert seqs(batch) == [2, 3, 0, 1]  # new ids, behind what was queued
    assert batch.attempts == (0, 0, 0, 0)
    assert batch.enqueued_at[2:] == (backend.clock.now, backend.clock.now)
    assert spool.replay_dead() == 0


def test_replay_by_id_moves_only_those_to_their_destination(spool: SpoolBackend) -> None:
    spool.append(entry(0), dest="x")
    spool.append(entry(1), dest="y")
    for _ in range(2):
        spool.dead_letter(lease(spool), error_code="E", message=None, request_id=None)
    dead = spool.dead_letters()
    assert spool.replay_dead([dead[1].id]) == 1
    assert [d.original_id for d in spool.dead_letters()] == [dead[0].original_id]
    batch = lease(spool)
    assert (batch.dest, seqs(batch)) == ("y", [1])
    assert spool.replay_dead([dead[1].id, dead[1].id + 1000]) == 0  # gone, and no such id
    assert spool.stats().replayed == 1


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
