"""``MemorySpool``: the bounded in-memory queue behind the memory and asyncio-memory modes.

Owns: records held in this process's memory between ``emit`` and delivery, their leases, a
bounded list of dead letters, and the counters of all of it. It implements
:class:`yai_spool.spool.SpoolBackend`, the subset of :class:`yai_spool.spool.Spool`'s API
that the flushers use, with the same meaning (``tests/spool/test_spool_contract.py`` runs
the same tests on both), so ``ThreadFlusher``, ``ShipCycle`` and the asyncio flusher drive
it unchanged: batching, the one retry policy, bisection of rejected batches and
dead-lettering are the durable spool's, not a copy. ``reopen_after_fork`` comes on top.

What it does NOT give you (stated plainly, because it is the whole trade-off):

- **Records are lost when the process dies** before they are delivered: ``kill -9``, an OOM
  kill, a segfault, a power cut, or an exit whose drain deadline passed during an SLS
  outage. ``close()`` counts whatever it throws away under the drop reason
  ``unsent_at_close``; a crash cannot count anything. Use the durable spool
  (``SpoolHandler``) when that matters.
- Dead letters (records SLS refuses on their own) are kept in memory only, at most
  ``max_dead_letters`` of them; older ones are forgotten and counted as ``dead_evicted``.
  They take no room in the queue's bounds, so ``replay_dead`` moves back only those that
  fit (the durable spool counts DEAD records in its bounds and never refuses a replay).

Invariants:

- Bounded: READY + LEASED records never exceed ``max_records`` / ``max_bytes`` (sizes are
  the stored log's size, the unit the durable spool and ``batch_bytes`` use).
  When full, ``when_full`` decides: ``drop_oldest`` evicts the oldest READY records (never
  LEASED ones), ``drop_newest`` refuses the new one, ``block`` waits up to ``block_timeout``
  for room and then refuses it (``full_timeout``). Every record that is not stored raises a
  :class:`~yai_spool.spool.SpoolDropped` subclass and is counted under exactly one reason,
  like the durable spool.
- Same lease semantics as the durable spool: FIFO per destination (the oldest READY record
  picks the destination), a lease is settled by ack / release / dead_letter of ids still held
  by it (a stale or cancelled settle moves nothing), released records go back in id order
  with one more attempt, and an expired lease reverts at the next ``lease()``.
- All state is behind one lock; ``append_log`` is O(1): the record is kept as its stored log
  (``bytes``, as in the durable spool: sized exactly, ready to send, and invisible to the
  cyclic GC however long the queue grows). No I/O.
- After ``fork()`` the child starts empty: the records it inherited belong to the parent,
  which ships them (shipping them from both would duplicate them).
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeAlias

from yai_spool.spool import (
    Batch,
    CheckpointResult,
    DeadLetter,
    DropReason,
    LastError,
    SpoolClosedError,
    SpoolFull,
    SpoolRecordTooLarge,
    SpoolStats,
    WhenFull,
)
from yai_spool.spool.common import (
    ENCODE_FAILURES,
    append_type_error,
    check_lease_args,
    checkpoint_mode,
    encode_error,
    release_counts,
    settle_ids,
)
from yai_spool.spool.failure import NO_FAILURE, Failure, SettleCalls, SettleTarget
from yai_spool.spool.schema import CODEC_LOG, decode_stored, encode_stored

__all__ = ["MemorySpool", "MemorySpoolConfig"]

_MiB = 1024 * 1024

#: Drop reasons only the memory spool has (the durable one keeps these records on disk).
UNSENT_AT_CLOSE = "unsent_at_close"
DEAD_EVICTED = "dead_evicted"
CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class MemorySpoolConfig:
    """Bounds of one memory spool.

    Args:
        max_records: READY + LEASED records held at most.
        max_bytes: their stored-log bytes at most.
        when_full: ``drop_oldest`` (default), ``drop_newest`` or ``block``.
        block_timeout: seconds ``append`` may wait for room with ``block``.
        max_record_bytes: one entry above this is dropped as ``too_large``.
        max_dead_letters: dead letters kept for inspection / replay (oldest forgotten).
    """

    max_records: int = 100_000
    max_bytes: int = 64 * _MiB
    when_full: WhenFull = WhenFull.DROP_OLDEST
    block_timeout: float = 1.0
    max_record_bytes: int = 2 * _MiB
    max_dead_letters: int = 1000

    def __post_init__(self) -> None:
        for name in ("max_records", "max_bytes", "max_record_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"MemorySpoolConfig.{name} must be an int > 0, got {value!r}")
        if isinstance(self.max_dead_letters, bool) or not isinstance(self.max_dead_letters, int):
            raise ValueError("MemorySpoolConfig.max_dead_letters must be an int >= 0")
        if self.max_dead_letters < 0:
            raise ValueError("MemorySpoolConfig.max_dead_letters must be an int >= 0")
        object.__setattr__(self, "when_full", WhenFull(self.when_full))
        if not isinstance(self.block_timeout, int | float) or self.block_timeout < 0:
            raise ValueError(f"MemorySpoolConfig.block_timeout must be >= 0: {self.block_timeout}")


# One queued record: [id, data, nbytes, enqueued_at, attempts]. A list, not an object: it is
# built once per emit, and a list is the cheapest mutable record CPython has. The record is
# kept as its stored log (the durable spool's row format): one bytes object per record
# instead of a dict of lists, so a queue of 100k records is not 100k+ objects for the cyclic
# GC to walk (a full collection over them stalls every thread, the event loop included), and
# it takes a fraction of the memory. Batches carry the stored logs, ready to send.
_ID, _DATA, _NBYTES, _AT, _ATTEMPTS = range(5)
_Rec: TypeAlias = list[Any]


class _Drops(Counter[str]):
    """Drop counts by reason that also remember when the newest drop happened."""

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self.clock = clock
        self.last_at: float | None = None

    def __setitem__(self, key: str, value: int) -> None:
        if value > self.get(key, 0):
            self.last_at = self.clock()
        super().__setitem__(key, value)


@dataclass(slots=True)
class _Lease:
    dest: str
    recs: dict[int, _Rec]
    until: float


class MemorySpool(SettleCalls):
    """A bounded, thread-safe in-memory queue with the durable spool's flusher-facing API.

    Records are lost if the process dies before they are delivered (see the module
    docstring); everything else (batching, retries, dead letters, counters) behaves as over a
    :class:`~yai_spool.spool.Spool`.
    """

    GUARDS_FORK = True  # nothing to guard: no SQLite, and the child starts empty

    def __init__(
        self,
        config: MemorySpoolConfig | None = None,
        *,
        name: str = "memory",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config or MemorySpoolConfig()
        self.path = f"memory:{name}"
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._last_id = 0
        self._ready: dict[str, deque[_Rec]] = {}
        self._leases: dict[str, _Lease] = {}
        self._leased_by: dict[int, str] = {}
        self._dead: deque[DeadLetter] = deque()
        self._dead_ids = itertools.count(1)
        self._rows = 0  # READY + LEASED records
        self._bytes = 0
        self._leased_rows = 0
        self._leased_bytes = 0
        self._waiting = 0
        self._closed = False
        self._flusher = False
        self._counts: Counter[str] = Counter()
        self._dropped = _Drops(self._clock)
        self._last_success: tuple[float, str | None] | None = None
        self._last_error: LastError | None = None

    def __repr__(self) -> str:
        return (
            f"<MemorySpool {self.path} {self._rows} records, {self._bytes} bytes, "
            f"max {self.config.max_records}/{self.config.max_bytes}>"
        )

    # --- producers ------------------------------------------------------------------------

    def append(self, entry: Mapping[str, Any], *, dest: str, **_: Any) -> None:
        """Queue one entry (``{"time", "time_ns", "contents"}``); see :meth:`append_log`.

        Raises:
            as :meth:`append_log`, plus ``SpoolEncodeError`` (counted) when it cannot be encoded.
        """
        try:
            data = encode_stored(entry)
        except ENCODE_FAILURES as exc:
            self._count_drop(DropReason.ENCODE_ERROR)
            raise encode_error(exc) from exc
        self.append_log(data, dest=dest)

    def append_log(self, data: bytes, *, dest: str, **_: Any) -> None:
        """Queue one stored log, or raise a counted ``SpoolDropped`` (see the module invariants).

        Keyword arguments of the durable spool's ``append_log`` (``log_time``, ``level``,
        ``logger``) are accepted and ignored: nothing here filters on them.

        Raises:
            SpoolFull (drop_newest / full_timeout), SpoolRecordTooLarge: not stored, already
                counted under ``exc.reason``.
            SpoolClosedError: the spool was closed (counted as ``closed``).
            TypeError: ``data`` is not bytes or ``dest`` is not a str.
        """
        if self._pid != os.getpid():
            self.reopen_after_fork()
        if dest.__class__ is not str or data.__class__ is not bytes:
            raise append_type_error(data, dest)
        size = len(data)
        config = self.config
        if size > config.max_record_bytes or size > config.max_bytes:
            self._count_drop(DropReason.TOO_LARGE)
            raise SpoolRecordTooLarge(f"record is {size} bytes, above {config.max_record_bytes}")
        with self._lock:
            if self._closed:
                self._dropped[CLOSED] += 1
                raise SpoolClosedError(f"{self.path} is closed")
            if self._rows >= config.max_records or self._bytes + size > config.max_bytes:
                self._make_room(size)  # raises SpoolFull when the record is refused
            rec: _Rec = [next(self._ids), data, size, self._clock(), 0]
            self._last_id = rec[_ID]
            queue = self._ready.get(dest)
            if queue is None:
                queue = self._ready[dest] = deque()
            queue.append(rec)
            self._rows += 1
            self._bytes += size
            self._counts["appended"] += 1

    def _count_drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._dropped[str(reason)] += n

    def _fits(self, size: int) -> bool:
        return self._rows < self.config.max_records and self._bytes + size <= self.config.max_bytes

    def _make_room(self, size: int) -> None:
        """Lock held, the record does not fit: apply ``when_full`` or raise SpoolFull."""
        policy = self.config.when_full
        if policy is WhenFull.DROP_OLDEST:
            while not self._fits(size) and self._evict_oldest():
                pass
            if self._fits(size):
                return
            reason = DropReason.DROP_NEWEST  # everything left is LEASED: cannot evict
        elif policy is WhenFull.BLOCK:
            deadline = time.monotonic() + self.config.block_timeout
            self._waiting += 1
            try:
                while not self._fits(size) and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._space.wait(left)  # ack / dead_letter / close notify
            finally:
                self._waiting -= 1
            if self._closed:
                self._dropped[CLOSED] += 1
                raise SpoolClosedError(f"{self.path} is closed")
            if self._fits(size):
                return
            reason = DropReason.FULL_TIMEOUT
        else:
            reason = DropReason.DROP_NEWEST
        self._dropped[reason] += 1
        raise SpoolFull(
            f"{self.path} is full ({self.config.max_records} records / "
            f"{self.config.max_bytes} bytes)",
            reason=reason,
        )

    def _evict_oldest(self) -> bool:
        """Lock held: drop the globally oldest READY record; False when none is READY."""
        dest = self._oldest_dest()
        if dest is None:
            return False
        rec = self._ready[dest].popleft()
        if not self._ready[dest]:
            del self._ready[dest]
        self._rows -= 1
        self._bytes -= rec[_NBYTES]
        self._dropped[DropReason.DROP_OLDEST] += 1
        return True

    def _oldest_dest(self) -> str | None:
        best: str | None = None
        best_id = 0
        for dest, queue in self._ready.items():
            if queue and (best is None or queue[0][_ID] < best_id):
                best, best_id = dest, queue[0][_ID]
        return best

    # --- the flusher side -----------------------------------------------------------------

    def lease(self, max_records: int, max_bytes: int, *, lease_seconds: float) -> Batch | None:
        """Lease the oldest READY records of one destination; ``None`` when nothing is READY.

        Expired leases revert to READY first (one more attempt). At least one record is
        returned even if it alone is larger than ``max_bytes``.
        """
        check_lease_args(max_records, max_bytes, lease_seconds)
        now = self._clock()
        with self._lock:
            if self._closed:
                return None
            self._revert_expired(now)
            dest = self._oldest_dest()
            if dest is None:
                return None
            queue = self._ready[dest]
            taken: dict[int, _Rec] = {}
            nbytes = 0
            while queue and len(taken) < max_records:
                rec = queue[0]
                if taken and nbytes + rec[_NBYTES] > max_bytes:
                    break
                queue.popleft()
                taken[rec[_ID]] = rec
                nbytes += rec[_NBYTES]
            if not queue:
                del self._ready[dest]
            token = secrets.token_hex(8)
            until = now + lease_seconds
            self._leases[token] = _Lease(dest, taken, until)
            for rec_id in taken:
                self._leased_by[rec_id] = token
            self._leased_rows += len(taken)
            self._leased_bytes += nbytes
        recs = list(taken.values())
        return Batch(
            token=token,
            dest=dest,
            ids=tuple(r[_ID] for r in recs),
            attempts=tuple(r[_ATTEMPTS] for r in recs),
            nbytes=nbytes,
            oldest_enqueued_at=min(r[_AT] for r in recs),
            lease_until=until,
            enqueued_at=tuple(r[_AT] for r in recs),
            logs=b"".join([r[_DATA] for r in recs]),
            sizes=tuple(r[_NBYTES] for r in recs),
        )

    def _revert_expired(self, now: float) -> None:
        for token in [t for t, lease in self._leases.items() if lease.until <= now]:
            n = self._release_locked(token, list(self._leases[token].recs), count_attempt=True)
            self._counts["leases_recovered"] += n

    def _take(self, ids: list[int], token: str | None) -> list[tuple[str, list[int]]]:
        """Lock held: (token, ids still leased by it) for a settle's ids (``settle_ids``)."""
        if token is not None:
            lease = self._leases.get(token)
            if lease is None:
                return []
            return [(token, [i for i in ids if i in lease.recs])]
        by_token: dict[str, list[int]] = {}
        for rec_id in ids:
            held_by = self._leased_by.get(rec_id)
            if held_by is not None:
                by_token.setdefault(held_by, []).append(rec_id)
        return list(by_token.items())

    def _pop_leased(self, token: str, ids: Iterable[int]) -> list[_Rec]:
        """Lock held: remove ``ids`` from lease ``token``; returns their records."""
        lease = self._leases[token]
        out = []
        for rec_id in ids:
            rec = lease.recs.pop(rec_id, None)
            if rec is not None:
                out.append(rec)
                self._leased_by.pop(rec_id, None)
        if not lease.recs:
            del self._leases[token]
        n, nbytes = len(out), sum(r[_NBYTES] for r in out)
        self._leased_rows -= n
        self._leased_bytes -= nbytes
        self._rows -= n
        self._bytes -= nbytes
        return out

    def ack(self, target: Batch | Iterable[int], *, request_id: str | None = None) -> int:
        """Delivered: forget these records (only those still leased). Returns how many."""
        ids, token = settle_ids(target)
        with self._lock:
            n = 0
            for held_by, held in self._take(ids, token):
                n += len(self._pop_leased(held_by, held))
            if n:
                self._counts["delivered"] += n
                self._last_success = (self._clock(), request_id)
                self._space.notify_all()
        return n

    def retry_later(
        self, target: SettleTarget, failure: Failure | None = None, *, count_attempt: bool = True
    ) -> int:
        """Retry later: back to READY in id order (attempts + 1 unless ``count_attempt=False``)."""
        ids, token = settle_ids(target)
        if not ids:
            return 0  # as the durable spool: no ids, nothing recorded (no last error either)
        failure = failure or NO_FAILURE
        with self._lock:
            n = 0
            for held_by, held in self._take(ids, token):
                n += self._release_locked(held_by, held, count_attempt=count_attempt)
            # One failed request gave these records back.
            counts = release_counts(n, failed=failure.failed, throttled=failure.throttled)
            self._counts.update(counts)
            if failure.failed:
                self._last_error = failure.last_error(self._clock())
        return n

    def _release_locked(self, token: str, ids: list[int], *, count_attempt: bool) -> int:
        dest = self._leases[token].dest
        recs = self._pop_leased(token, ids)
        if not recs:
            return 0
        # Still queued (READY), so put the counts back that _pop_leased took off.
        self._rows += len(recs)
        self._bytes += sum(r[_NBYTES] for r in recs)
        if count_attempt:
            for rec in recs:
                rec[_ATTEMPTS] += 1
        recs.sort(key=lambda r: r[_ID])
        queue = self._ready.get(dest)
        if not queue:
            self._ready[dest] = deque(recs)
        elif recs[-1][_ID] < queue[0][_ID]:
            queue.extendleft(reversed(recs))  # the usual case: an older batch goes first
        else:  # concurrent leases settled out of order: merge by id
            self._ready[dest] = deque(sorted([*queue, *recs], key=lambda r: r[_ID]))
        return len(recs)

    def give_up(
        self, target: SettleTarget, failure: Failure, *, attempts: int | None = None
    ) -> int:
        """Give up on these leased records: keep them (bounded) as dead letters."""
        ids, token = settle_ids(target)
        if not ids:
            return 0  # as the durable spool: no ids, nothing recorded (no last error either)
        now = self._clock()
        with self._lock:
            n = 0
            limit = self.config.max_dead_letters
            for held_by, held in self._take(ids, token):
                dest = self._leases[held_by].dest
                for rec in self._pop_leased(held_by, held):
                    n += 1
                    if limit == 0:
                        self._dropped[DEAD_EVICTED] += 1
                        continue
                    if len(self._dead) >= limit:
                        self._dead.popleft()
                        self._dropped[DEAD_EVICTED] += 1
                    self._dead.append(
                        DeadLetter(
                            id=next(self._dead_ids),
                            original_id=rec[_ID],
                            dest=dest,
                            entry=decode_stored(rec[_DATA], CODEC_LOG),
                            nbytes=rec[_NBYTES],
                            enqueued_at=rec[_AT],
                            attempts=rec[_ATTEMPTS] + 1 if attempts is None else attempts,
                            error_code=failure.code,
                            message=failure.message,
                            request_id=failure.request_id,
                            dead_at=now,
                        )
                    )
            self._counts["dead_lettered"] += n
            self._last_error = failure.last_error(now)
            if n:
                self._space.notify_all()
        return n

    def acquire_flusher(self) -> bool:
        """Become the flusher of this queue; True (also when it already is, like ``Spool``).

        On becoming it, leases left by an earlier flusher revert (the queue is their only
        owner, and that flusher is gone); a repeated call keeps the current leases.
        """
        if self._pid != os.getpid():
            self.reopen_after_fork()
        with self._lock:
            if self._flusher:
                return True  # the holder asking again: its leases stay (durable: same)
            self._flusher = True
            for token in list(self._leases):
                n = self._release_locked(token, list(self._leases[token].recs), count_attempt=True)
                self._counts["leases_recovered"] += n
        return True

    def release_flusher(self) -> None:
        """Stop being the flusher (idempotent)."""
        self._flusher = False

    @property
    def is_flusher(self) -> bool:
        return self._flusher

    def checkpoint(self, mode: str = "PASSIVE") -> CheckpointResult:
        """Nothing to checkpoint in memory (the flusher calls it on every spool).

        Raises:
            ValueError: ``mode`` is not one ``Spool.checkpoint`` takes (same calls, same
                errors on both backends: a typo must not pass in memory and fail on disk).
        """
        checkpoint_mode(mode)
        return CheckpointResult(busy=False, wal_frames=0, checkpointed_frames=0)

    def record_delivery(self, *, request_id: str | None = None, records: int = 0) -> None:
        with self._lock:
            self._counts["delivered"] += records
            self._last_success = (self._clock(), request_id)

    def record_failure(self, failure: Failure) -> None:
        with self._lock:
            self._last_error = failure.last_error(self._clock())
            if failure.throttled:
                self._counts["throttled_requests"] += 1

    # --- reading --------------------------------------------------------------------------

    def high_water(self) -> int:
        """The largest id handed out so far (0 before the first append)."""
        return self._last_id

    def pending_through(self, max_id: int) -> int:
        """READY + LEASED records with id <= ``max_id``."""
        with self._lock:
            n = sum(1 for rec_id in self._leased_by if rec_id <= max_id)
            for queue in self._ready.values():
                for rec in queue:  # id order: stop at the first newer record
                    if rec[_ID] > max_id:
                        break
                    n += 1
        return n

    def dead_letters(self, limit: int = 100, *, after_id: int = 0) -> list[DeadLetter]:
        """Dead letters still kept, oldest first (page with ``after_id``)."""
        with self._lock:
            return [d for d in self._dead if d.id > after_id][:limit]

    def replay_dead(self, ids: Iterable[int] | None = None) -> int:
        """Queue dead letters again at the tail (all, or the given ``DeadLetter.id`` values).

        As in the durable spool: new ids, attempts 0, enqueued now, counted as ``replayed``
        and not as ``appended``; returns how many moved. Unlike there, dead letters take no
        room in the bounds, so only those that fit move, oldest first; the others stay dead
        letters. A replay never evicts, refuses or waits (``when_full`` is for producers):
        no record is lost or counted as a drop by it.

        Raises:
            SpoolClosedError: the spool was closed (nothing moves).
        """
        wanted = None if ids is None else {int(i) for i in ids}
        with self._lock:
            if self._closed:
                raise SpoolClosedError(f"{self.path} is closed")
            now = self._clock()
            kept: deque[DeadLetter] = deque()
            for dead in self._dead:
                data = encode_stored(dead.entry) if wanted is None or dead.id in wanted else None
                if data is None or not self._fits(len(data)):
                    kept.append(dead)
                    continue
                rec: _Rec = [next(self._ids), data, len(data), now, 0]
                self._ready.setdefault(dead.dest, deque()).append(rec)
                self._rows += 1
                self._bytes += rec[_NBYTES]
                self._last_id = rec[_ID]  # high_water() covers the replayed records too
            moved = len(self._dead) - len(kept)
            self._dead = kept
            self._counts["replayed"] += moved
        return moved

    def stats(self) -> SpoolStats:
        """A consistent snapshot, in the durable spool's shape (``path`` is ``memory:...``)."""
        now = self._clock()
        with self._lock:
            oldest_id = None
            oldest_at = None
            for queue in self._ready.values():
                if queue and (oldest_id is None or queue[0][_ID] < oldest_id):
                    oldest_id, oldest_at = queue[0][_ID], queue[0][_AT]
            dead_bytes = sum(d.nbytes for d in self._dead)
            success = self._last_success
            counts = self._counts
            return SpoolStats(
                path=self.path,
                schema_version=0,
                ready_records=self._rows - self._leased_rows,
                ready_bytes=self._bytes - self._leased_bytes,
                leased_records=self._leased_rows,
                leased_bytes=self._leased_bytes,
                dead_records=len(self._dead),
                dead_bytes=dead_bytes,
                active_leases=len(self._leases),
                oldest_ready_enqueued_at=oldest_at,
                oldest_ready_age=None if oldest_at is None else max(0.0, now - oldest_at),
                appended=counts["appended"],
                delivered=counts["delivered"],
                retried=counts["retried"],
                dead_lettered=counts["dead_lettered"],
                replayed=counts["replayed"],
                purged=counts["purged"],
                throttled_requests=counts["throttled_requests"],
                retry_requests=counts["retry_requests"],
                leases_recovered=counts["leases_recovered"],
                dropped=MappingProxyType({k: v for k, v in self._dropped.items() if v}),
                last_drop_at=self._dropped.last_at,
                last_success_at=success[0] if success else None,
                last_success_request_id=success[1] if success else None,
                last_error=self._last_error,
                flusher_pid=os.getpid() if self._flusher else None,
            )

    snapshot = stats

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> int:
        """Throw away what was not delivered, counted as ``unsent_at_close``; idempotent.

        Returns the number of records lost by this call. Later appends raise
        ``SpoolClosedError`` (counted as ``closed``).
        """
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
            lost = self._rows
            if lost:
                self._dropped[UNSENT_AT_CLOSE] += lost
            self._ready.clear()
            self._leases.clear()
            self._leased_by.clear()
            self._rows = self._bytes = self._leased_rows = self._leased_bytes = 0
            self._flusher = False
            self._space.notify_all()
        return lost

    def reopen_after_fork(self) -> None:
        """In a forked child: start empty with fresh locks (the parent ships its records)."""
        if self._pid == os.getpid():
            return
        closed = self._closed
        self._reset()
        self._closed = closed

    def __enter__(self) -> MemorySpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
