"""The spool contract (``yai_spool.spool.backend``), written once, run against every backend.

Each test in the ``test_spool_contract*.py`` files takes the parametrised ``spool`` /
``backend`` fixtures (``conftest.py``) and runs twice: on a real SQLite ``Spool`` in
``tmp_path`` and on a ``MemorySpool``, configured alike (``contract_support.Backend``) and
driven by the same fake clock. A test states one promise of ``SpoolBackend``'s docstring;
nothing in it may depend on which backend runs it.

This file: conformance (members, signatures, mypy), append and lease, settling, dead letters.
``test_spool_contract_bounds.py``: lease expiry and the flusher role, bounds and ``when_full``,
counters and draining. ``test_spool_contract_differences.py``: the documented differences,
one test per backend.
"""

from __future__ import annotations

import inspect
import textwrap
import threading
from pathlib import Path
from typing import Any, Generic, Protocol

import pytest
from contract_support import DEADLINE, KINDS, LONG, Backend, drain, fill, lease, seqs, size
from spool_support import REPO_ROOT, entry, seq_of

from yai_spool.spool import Failure, LastError, Spool, SpoolBackend
from yai_spool.spool.memory import MemorySpool
from yai_spool.spool.schema import encode_stored

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


def _protocol_members() -> dict[str, Any]:
    """The public members ``SpoolBackend`` declares, with those of its protocol bases."""
    members: dict[str, Any] = {}
    for base in reversed(SpoolBackend.__mro__):
        if base not in (Protocol, Generic, object):
            members.update((k, v) for k, v in vars(base).items() if not k.startswith("_"))
    return members


@pytest.mark.parametrize("cls", [Spool, MemorySpool], ids=KINDS)
def test_every_call_the_protocol_allows_is_accepted(cls: type) -> None:
    members = _protocol_members()
    assert len(members) == 20  # the scan found every member (see the protocol and SettleCalls)
    for name, proto in members.items():
        impl = inspect.getattr_static(cls, name)
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


def test_the_failure_forms_settle_like_the_keywords(spool: SpoolBackend, backend: Backend) -> None:
    """``retry_later`` / ``give_up`` / ``record_failure``: the error as one ``Failure`` value."""
    fill(spool, 3)
    batch = lease(spool)
    quota = Failure("WriteQuotaExceed", "q", "r1", status=403, throttled=True)
    assert spool.retry_later(batch[:2], quota) == 2
    too_big = Failure("InvalidLogSize", "big", "r2", status=400)
    assert spool.give_up(batch[2:], too_big, attempts=5) == 1
    stats = spool.stats()
    assert (stats.retried, stats.retry_requests, stats.throttled_requests) == (2, 1, 1)
    assert stats.last_error == LastError("InvalidLogSize", "big", "r2", backend.clock.now, 400)
    [dead] = spool.dead_letters()
    assert (seq_of(dead.entry), dead.attempts, dead.error_code) == (2, 5, "InvalidLogSize")
    assert (dead.message, dead.request_id) == ("big", "r2")
    again = lease(spool)
    assert (seqs(again), again.attempts) == ([0, 1], (1, 1))
    assert spool.retry_later(again, count_attempt=False) == 2  # no failure: no request counted
    assert lease(spool).attempts == (1, 1)
    backend.clock.advance(1)
    spool.record_failure(Failure("ServerBusy", None, None, status=503, throttled=True))
    stats = spool.stats()
    assert (stats.retried, stats.retry_requests, stats.throttled_requests) == (4, 1, 2)
    assert stats.last_error == LastError("ServerBusy", "", None, backend.clock.now, 503)


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
