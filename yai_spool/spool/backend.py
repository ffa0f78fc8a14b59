"""``SpoolBackend``: the one contract every spool backend keeps.

Two backends implement it: the durable SQLite :class:`~yai_spool.spool.Spool` and the in-memory
:class:`~yai_spool.spool.memory.MemorySpool`. The flushers (``ThreadFlusher``, ``ShipCycle``, the
asyncio flusher) and the handlers use a spool only through these members, so batching, retries,
bisection and dead-lettering are written once for both. ``tests/spool/test_spool_contract.py``
runs every promise below against each backend with the same configuration: a backend that
drifts from it fails there, not in production.

The promises (ids, sizes and counters mean the same in every backend):

- **Append.** ``append(entry, dest=...)`` encodes a mapper entry (``{"time", "time_ns",
  "contents"}``) to its stored log; ``append_log(data, dest=...)`` queues a stored log as is.
  Either returns only once the record is READY (durable: committed). Ids increase strictly
  among queued records. A record's size is its stored log's length: the unit of every bound,
  of ``lease``'s ``max_bytes`` and of ``Batch.nbytes``. ``dest`` must be a ``str`` and
  ``data`` ``bytes`` (``TypeError``, not counted: a caller bug, not a drop).
- **Lease: FIFO per destination.** ``lease(max_records, max_bytes, lease_seconds=...)`` first
  reverts every expired lease (``lease_until <= now``: READY again with one more attempt,
  counted as ``leases_recovered``). Then the oldest READY record picks the destination, and that
  destination's oldest READY records are taken in id order, up to ``max_records`` records and
  ``max_bytes`` bytes, and always at least one record, even one larger than ``max_bytes``.
  ``None`` when nothing is READY. A batch never mixes destinations; ``Batch.attempts`` are the
  attempts made before this lease. ``max_records < 1``, ``max_bytes < 1`` or
  ``lease_seconds <= 0`` raise ``ValueError``.
- **Settle only what the lease still holds.** ``ack`` (delivered: the records are forgotten),
  ``release`` (READY again, back in id order, one more attempt unless ``count_attempt=False``)
  and ``dead_letter`` (DEAD, with the error and ``attempts``, by default the record's
  attempts + 1) act only on ids still held by the lease: a ``Batch`` (or a part of one,
  ``batch[i:j]`` / ``batch.select(...)``) by its lease token, plain ids by any lease of this
  handle. A stale settle (already settled, expired and re-leased, reverted by a new flusher)
  moves nothing. Each returns how many records it moved; settling no ids returns 0 and records
  nothing. ``ack`` counts ``delivered`` and the last success (time, request id) when it moved
  records; ``release`` counts ``retried`` and, given an ``error_code``, the last error;
  ``dead_letter`` counts ``dead_lettered`` and the last error. ``retry_later(target,
  failure)`` / ``give_up(target, failure)`` / ``record_failure(failure)`` are the same calls
  with the error as one :class:`~yai_spool.spool.failure.Failure` value.
- **Bounds and** ``when_full``. ``max_records`` / ``max_bytes`` bound the queue. A record
  larger than ``max_record_bytes`` (or than ``max_bytes``) is refused as ``too_large``, an
  entry that cannot be encoded as ``encode_error``, whatever the fill level. When the record
  does not fit: ``drop_oldest`` evicts the oldest READY records of any destination (never
  LEASED ones: they are in flight), each counted as ``drop_oldest``, and refuses the new one as
  ``drop_newest`` only when evicting every READY record is not enough; ``drop_newest``
  refuses the new record; ``block`` waits up to ``block_timeout`` for room (an ``ack`` in
  this process wakes it at once), then refuses it as ``full_timeout``; a ``close`` while it
  waits ends the wait with ``SpoolClosedError``.
- **Every refused record is counted once.** It raises a :class:`~yai_spool.spool.SpoolDropped`
  subclass (``SpoolFull``, ``SpoolRecordTooLarge``, ``SpoolEncodeError``, ...) whose
  ``reason`` is the one key of ``stats().dropped`` it was counted under; the caller only
  reports it, never counts it again.
- **Counters.** ``stats()`` is a consistent ``SpoolStats`` snapshot: READY / LEASED / DEAD
  records and bytes, ``active_leases``, ``oldest_ready_enqueued_at``, ``appended`` (records
  accepted by ``append``/``append_log``; replays excluded), ``delivered``, ``retried``,
  ``dead_lettered``, ``replayed``, ``leases_recovered``, ``dropped`` (reason -> count, only
  reasons that occurred), ``last_success_at`` / ``last_success_request_id``, ``last_error``.
- **One flusher.** ``acquire_flusher()`` never blocks; True when this handle is the flusher now
  (it just became it, or already was). Becoming the flusher reverts the leases it cannot own
  (attempts + 1, counted as ``leases_recovered``); the holder's own leases stay.
  ``release_flusher()`` is idempotent; ``is_flusher`` tells.
- **Draining.** Every record appended before a ``high_water()`` call has an id <= the value while
  it is queued, so ``pending_through(high_water()) == 0`` means each of them was delivered,
  dead-lettered or dropped. ``pending_through(max_id)`` counts READY + LEASED records with
  id <= ``max_id``; DEAD records are not pending.
- **Dead letters.** ``dead_letters(limit, after_id=...)`` lists them oldest first, paged by
  ``DeadLetter.id``. ``replay_dead(ids=None)`` queues them (all, or the given ``DeadLetter.id``
  values) again at the tail: new ids, attempts 0, enqueued now, same destination, counted as
  ``replayed``, not as ``appended``. ``checkpoint()`` bounds the durable WAL (a no-op in
  memory); the flusher calls it on any backend.
- **Close.** ``close()`` is idempotent; after it ``append`` raises ``SpoolClosedError`` and
  nothing more is leased.

Where the backends legitimately differ (each difference has its own test, per backend):

- **Records at close.** ``Spool``: kept in the file; a new ``Spool`` on the path sees the
  READY, LEASED (until their lease expires) and DEAD records. ``MemorySpool``: thrown away and
  counted as ``unsent_at_close``; ``close()`` returns how many.
- **Calls after close.** ``Spool``: every call but ``close`` raises ``SpoolClosedError``.
  ``MemorySpool``: ``append`` raises it (counted as ``closed``); ``lease`` returns None, settles
  move nothing, and ``stats()`` stays readable (it is how the loss is reported).
- **DEAD records and the bounds.** ``Spool``: they count against ``max_records`` /
  ``max_bytes``, and ``drop_oldest`` evicts DEAD records before READY ones. ``MemorySpool``:
  kept apart, at most ``max_dead_letters``; the oldest is forgotten as ``dead_evicted``.
- **``replay_dead`` when full.** ``Spool``: never refused (DEAD records are already counted).
  ``MemorySpool``: replays those that fit the bounds; the rest stay dead letters.
- **Lease owner.** ``Spool``: each instance (one per process); ``acquire_flusher`` reverts the
  leases of other instances, this one's stay. ``MemorySpool``: the queue has one owner, so the
  leases left from before ``acquire_flusher`` revert (the flusher that took them is gone).
- **``high_water()``.** ``Spool``: the largest id queued now (0 when empty; an id may be reused
  once the newest records left). ``MemorySpool``: the last id handed out, never reused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from yai_spool.spool.failure import SettleCalls
from yai_spool.spool.types import Batch, CheckpointResult, DeadLetter, SpoolStats

__all__ = ["SpoolBackend"]


@runtime_checkable
class SpoolBackend(SettleCalls, Protocol):
    """What the flushers and handlers may rely on in any spool (the module docstring).

    Structural: ``Spool`` and ``MemorySpool`` implement it without inheriting from it. Their
    own methods may take more keywords (``Spool.replay_dead(error_code=...)``) as long as
    these calls keep their meaning. ``isinstance(x, SpoolBackend)`` checks only that the
    members exist; the signatures are checked statically and by the contract tests.

    The settle calls after a failed send (``release``, ``dead_letter``, ``record_error`` and
    their ``Failure`` forms ``retry_later``, ``give_up``, ``record_failure``) come from
    :class:`~yai_spool.spool.failure.SettleCalls`, which both backends subclass for its
    keyword forms.
    """

    def append(self, entry: Mapping[str, Any], *, dest: str) -> None:
        """Encode ``entry`` and queue it; raises a counted ``SpoolDropped`` when refused."""
        ...

    def append_log(
        self,
        data: bytes,
        *,
        dest: str,
        log_time: int | None = None,
        level: str | None = None,
        logger: str | None = None,
    ) -> None:
        """Queue one stored log (``log_time``/``level``/``logger``: filter columns, optional)."""
        ...

    def lease(self, max_records: int, max_bytes: int, *, lease_seconds: float) -> Batch | None:
        """The oldest READY records of one destination, leased; None when nothing is READY."""
        ...

    def ack(self, target: Batch | Iterable[int], *, request_id: str | None = None) -> int:
        """Delivered: forget the records still held by the lease; returns how many."""
        ...

    def acquire_flusher(self) -> bool:
        """Become (or stay) the only flusher, non-blocking; True when this handle is it."""
        ...

    def release_flusher(self) -> None:
        """Stop being the flusher (idempotent)."""
        ...

    @property
    def is_flusher(self) -> bool:
        """True while this handle is the flusher."""
        ...

    def checkpoint(self, mode: str = "PASSIVE") -> CheckpointResult:
        """Bound the durable WAL (a no-op result in memory)."""
        ...

    def high_water(self) -> int:
        """An id >= that of every record appended so far that is still queued."""
        ...

    def pending_through(self, max_id: int) -> int:
        """READY + LEASED records with id <= ``max_id``."""
        ...

    def dead_letters(self, limit: int = 100, *, after_id: int = 0) -> list[DeadLetter]:
        """Dead letters oldest first, after ``after_id`` (a ``DeadLetter.id``)."""
        ...

    def replay_dead(self, ids: Iterable[int] | None = None) -> int:
        """Queue dead letters again at the tail (all, or these ``DeadLetter.id``); how many."""
        ...

    def stats(self) -> SpoolStats:
        """A consistent snapshot of records and counters."""
        ...

    def close(self) -> object:
        """Close (idempotent); what it returns is the backend's (memory: records lost)."""
        ...
