"""The flusher: leases batches from a spool, ships them with PutLogs, acks only on 200.

Owns the delivery loop of one spool and the single retry layer of the project: what to do
with a batch after each outcome, how long to wait, and when records leave the spool.

``ShipCycle`` is the sans-I/O core shared by every driver: ``ShipCycle.plan(batch)`` is a
generator that turns one leased batch into ``SendRequest``s (the body is the batch's stored
logs plus a trailer: nothing is decoded or encoded per record), bisects rejected batches down
to the poison records, and settles every record with exactly one of ack / release /
dead-letter. ``ShipCycle.ship`` drives it with a blocking sender, ``ship_async`` on asyncio.
``ThreadFlusher`` runs plans from a background thread (the in-process flusher of
``SpoolHandler`` and the unit of the ``yai-spool run`` daemon) with up to
``FlusherConfig.max_in_flight`` requests in flight: while one request waits for SLS, the next
batch is leased and sent, and answers are settled as they come.

Invariants:
- A record is deleted only after SLS answered 200 for a request that contained it
  (``Spool.ack``). Anything else leaves it READY for a later attempt or parks it DEAD with
  the SLS errorCode, message and request id. Delivery is therefore *at least once*: a
  flusher killed between the 200 and the ack resends that one batch.
- Exactly one retry layer: the client never retries; this module waits after failures,
  with full-jitter exponential backoff from a frozen ``RetryPolicy``. Every wait is on an
  Event, so ``stop()`` cuts a backoff short.
- Outcomes come from ``errors.classify_exception`` only:
  DELIVERED -> ack; RETRY -> release + backoff; THROTTLED -> release + throttle backoff (a
  quota error slows the send rate, it is not a failure of the data); CREDENTIALS -> release
  + long backoff, surfaced as the spool's last error (the data is kept: a typo in a
  logstore name must not dead-letter a day of logs); REJECTED -> bisect, and dead-letter
  only the single records SLS refuses on their own.
- Records older than ``RetryPolicy.max_age`` are dead-lettered (``MaxAgeExceeded``), never
  silently deleted.
- Only the holder of the spool's flusher lock ships; a second flusher (another process or
  a daemon) waits in standby and takes over when the holder dies.
- A spool error (disk full, read-only file, busy) never ends the flusher thread: it backs
  off like a failed send and tries again; a batch whose ack/release could not be written
  is released as soon as the spool can be written (not left leased until lease expiry).
- ``stop(drain_timeout)`` is bounded by its deadline whatever the network does: at the
  deadline the requests still in flight are cancelled (``Sender.abort``, optional) and the
  flusher is *abandoned*: from then on its threads never touch the spool again (no ack, no
  release, no lease, no checkpoint), so the caller may close the spool once ``stop``
  returns. The cancelled batches stay LEASED; the next flusher recovers them when it takes
  the flusher lock (at least once: SLS may have stored them). ``stop`` returns True when
  every thread of the flusher has ended, which it does within ``ABANDON_GRACE`` of the
  deadline whenever the sender can abort.
- The flusher thread marks itself (``in_flusher_thread``) so records logged *by* the
  shipping path (httpx debug logs, our own diagnostics) are not fed back into the spool.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import random
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from yai_spool.diagnostics import report_internal
from yai_spool.shipping.retry import DEFAULT_RETRY, Backoff, RetryPolicy
from yai_spool.sls.encoding import join_logs
from yai_spool.sls.errors import (
    EncodeError,
    Outcome,
    SLSError,
    classify_exception,
)
from yai_spool.spool import Batch, SpoolBackend
from yai_spool.spool.destination import DestKey, decode_dest

__all__ = [
    "AsyncSender",
    "FlusherConfig",
    "FlusherStats",
    "SendRequest",
    "SendResult",
    "Sender",
    "ShipCycle",
    "ThreadFlusher",
    "in_flusher_thread",
    "ship_async",
]

internal_log = logging.getLogger("yai_spool.internal")

_MiB = 1024 * 1024
_local = threading.local()


def in_flusher_thread() -> bool:
    """True on a thread that ships records (its own log records must not be spooled)."""
    return getattr(_local, "flusher", False)


def mark_flusher_thread() -> None:
    """Mark the calling thread as shipping (see :func:`in_flusher_thread`)."""
    _local.flusher = True


class Sender(Protocol):
    """What the flusher needs from a PutLogs client (``PutLogsClient`` and its adapter).

    A sender may also have ``abort()``: cancel every call in flight from another thread
    (``PutLogsClient.abort``). Without it, ``ThreadFlusher.stop`` cannot end a request that
    never answers; the thread is then left behind, abandoned (it never touches the spool).
    """

    def put_raw(self, project: str, logstore: str, raw: bytes) -> Any: ...

    def close(self) -> None: ...


#: How long ``ThreadFlusher.stop`` waits, after cancelling the requests in flight at its
#: deadline, for the flusher's threads to end (an aborted socket fails in microseconds; this
#: only covers the thread switches). Part of the documented shutdown bound.
ABANDON_GRACE = 0.15


def abort_sender(sender: object) -> bool:
    """Call ``sender.abort()`` if it has one; True if it did (never raises).

    A wrapper without ``abort`` that exposes the client it built as ``.built`` (a sender
    built lazily on the first send) is looked through.
    """
    abort = getattr(sender, "abort", None)
    if abort is None:
        built = getattr(sender, "built", None)
        abort = getattr(built, "abort", None) if built is not None else None
    if abort is None:
        return False
    try:
        abort()
    except Exception:
        internal_log.debug("aborting the sender failed", exc_info=True)
        return False
    return True


@dataclass(frozen=True, slots=True)
class FlusherConfig:
    """How batches are formed and how the loop paces itself.

    Args:
        max_batch_records: records per PutLogs request (the producers' default, 4096).
        max_batch_bytes: spooled bytes per request. The spool stores compact JSON, which is
            a little larger than the protobuf it becomes, so 4 MiB keeps every request well
            under the 10 MB raw-body limit of PutLogs while leaving room for big records.
        linger: seconds to wait for more records before sending a batch that is not full.
        poll_interval: seconds between looks at the spool when nothing woke the flusher
            (records appended by other processes) and between standby lock attempts.
        lease_seconds: a batch lease outlives any single request by far; if this flusher
            dies the next one recovers the lease at once through the flusher lock.
        checkpoint_interval: seconds between WAL checkpoints (kept off producers' threads).
        max_in_flight: PutLogs requests in flight at once (the next batch is leased and sent
            while earlier ones wait for SLS); 1 sends one batch at a time.
        retry: the backoff policy.
        project, logstore: override the destination names stored in the spool rows (the
            daemon's per-spool configuration); ``None`` keeps them.
        topic: override of the LogGroup topic stored with the rows; ``None`` keeps it
            ("" is a real override: no topic).
    """

    max_batch_records: int = 4096
    max_batch_bytes: int = 4 * _MiB
    linger: float = 0.5
    poll_interval: float = 1.0
    lease_seconds: float = 300.0
    checkpoint_interval: float = 1.0
    max_in_flight: int = 2
    retry: RetryPolicy = DEFAULT_RETRY
    project: str | None = None
    logstore: str | None = None
    topic: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_records <= 40_960:
            raise ValueError("FlusherConfig.max_batch_records must be in 1..40960 (SLS cap)")
        if not 1024 <= self.max_batch_bytes <= 8 * _MiB:
            raise ValueError(
                "FlusherConfig.max_batch_bytes must be in 1 KiB..8 MiB "
                "(headroom under the 10 MB PutLogs limit)"
            )
        for name in ("linger", "checkpoint_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"FlusherConfig.{name} must be >= 0")
        for name in ("poll_interval", "lease_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FlusherConfig.{name} must be > 0")
        if not 1 <= self.max_in_flight <= 64:
            raise ValueError("FlusherConfig.max_in_flight must be in 1..64")


@dataclass(slots=True)
class FlusherStats:
    """In-process counters of one flusher (the spool keeps the durable ones).

    Same names and units as the spool's counters (``SpoolStats``): ``delivered``,
    ``retried`` (records given back after a failed attempt, whatever the failure), ``dead``,
    ``expired`` count **records**; ``requests`` (PutLogs requests sent), ``retry_requests``
    (requests that failed and gave their records back), ``throttled_requests`` and
    ``credential_error_requests`` (subsets of ``retry_requests``) and ``bisections`` count
    **requests**.

    ``in_flight`` is a gauge: PutLogs requests sent and not answered yet (a plan suspended
    at its ``yield``), maintained by ``ShipCycle`` for every driver.
    """

    requests: int = 0
    in_flight: int = 0
    delivered: int = 0
    retried: int = 0
    retry_requests: int = 0
    throttled_requests: int = 0
    credential_error_requests: int = 0
    dead: int = 0
    expired: int = 0
    bisections: int = 0
    last_outcome: str = ""
    last_error_code: str = ""
    last_success_at: float | None = None
    consecutive_failures: int = 0
    is_flusher: bool = False

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One PutLogs request ``ShipCycle.plan`` wants sent: an encoded (uncompressed) LogGroup."""

    project: str
    logstore: str
    raw: bytes
    record_count: int


# What a driver sends back into the plan: the sender's return value, or the exception it
# raised (an ``Exception`` instance; BaseExceptions such as cancellation are not sent).
SendResult = Any


@dataclass
class ShipCycle:
    """Ship one leased batch and settle every record in it; the shared core of the drivers.

    ``plan(batch)`` is the whole cycle as a generator that does no network I/O: it yields
    each ``SendRequest`` and receives the sender's result (or the exception it raised),
    settling records in the spool itself (ack / release / dead-letter). ``ship(batch)`` drives
    it with the synchronous ``sender``; :func:`ship_async` drives it on asyncio. Both return
    the outcome that should pace the loop: DELIVERED when the link worked (even if poison
    records were dead-lettered), otherwise the failure class.
    """

    spool: SpoolBackend
    sender: Sender
    config: FlusherConfig
    stats: FlusherStats = field(default_factory=FlusherStats)
    wall_clock: Callable[[], float] = time.time
    #: The server's ``Retry-After`` of the latest failed request (None without one); the
    #: driver hands it to its ``Backoff`` (``take_retry_after``).
    retry_after: float | None = None

    def take_retry_after(self) -> float | None:
        """The latest failure's retry hint, once."""
        hint, self.retry_after = self.retry_after, None
        return hint

    def ship(self, batch: Batch) -> Outcome:
        """Run the cycle with ``self.sender`` (blocking)."""
        plan = self.plan(batch)
        try:
            request = next(plan)
            while True:
                try:
                    result: SendResult = self.sender.put_raw(
                        request.project, request.logstore, request.raw
                    )
                except Exception as exc:  # the plan classifies it
                    result = exc
                request = plan.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def plan(self, batch: Batch) -> Generator[SendRequest, SendResult, Outcome]:
        """The cycle of one batch, sans I/O: yields requests, settles records, returns the outcome.

        Expired records are dead-lettered first; a rejected request is bisected (each half
        is another request) down to the single records SLS refuses. Closing the generator
        before it returns (a cancelled driver) leaves the unsettled records leased: the
        driver gives them back.
        """
        try:
            dest = decode_dest(batch.dest)
        except ValueError as exc:
            self._dead(batch, "InvalidDestination", str(exc), None, None)
            return Outcome.DELIVERED
        batch = self._expire(batch)
        if not len(batch):
            return Outcome.DELIVERED
        return (yield from self._send(dest, batch))

    # -- steps ---------------------------------------------------------------------------

    def _expire(self, batch: Batch) -> Batch:
        """Dead-letter the records older than max_age; returns the rest of the batch."""
        policy = self.config.retry
        now = self.wall_clock()
        if not policy.is_expired(batch.oldest_enqueued_at, now):
            return batch
        enqueued = batch.enqueued_at or (batch.oldest_enqueued_at,) * len(batch)
        old = [i for i, t in enumerate(enqueued) if policy.is_expired(t, now)]
        if not old:
            return batch
        self.stats.expired += len(old)
        message = f"older than max_age={policy.max_age:g}s; never delivered"
        self._dead(batch.select(old), "MaxAgeExceeded", message, None, None)
        expired = set(old)
        return batch.select(i for i in range(len(batch)) if i not in expired)

    def _encode(self, dest: DestKey, part: Batch) -> bytes:
        """The LogGroup body of ``part``: its stored logs and the destination's trailer."""
        topic = self.config.topic if self.config.topic is not None else dest.topic
        return join_logs(part.logs, topic, dest.source, dest.tags)

    def _send(self, dest: DestKey, part: Batch) -> Generator[SendRequest, SendResult, Outcome]:
        project = self.config.project or dest.project
        logstore = self.config.logstore or dest.logstore
        exc: BaseException | None = None
        request_id: str | None = None
        try:
            raw = self._encode(dest, part)
        except (EncodeError, KeyError, TypeError, ValueError) as error:
            # Data we cannot even encode (or decode from the spool) is poison by definition.
            exc = error if isinstance(error, EncodeError) else EncodeError(str(error))
            outcome = Outcome.REJECTED
        else:
            self.stats.requests += 1
            self.stats.in_flight += 1
            try:
                result = yield SendRequest(project, logstore, raw, len(part))
            finally:  # answered, or the driver closed the plan (cancelled): not in flight
                self.stats.in_flight -= 1
            del raw
            if isinstance(result, BaseException):
                exc = result
                outcome = classify_exception(result)
            else:
                outcome = Outcome.DELIVERED
                request_id = getattr(result, "request_id", None)
        self.stats.last_outcome = outcome.name.lower()
        if outcome is Outcome.DELIVERED:
            self.spool.ack(part, request_id=request_id)
            self.stats.delivered += len(part)
            self.stats.last_success_at = self.wall_clock()
            return outcome
        code, message, request_id = _describe(exc)
        status = exc.status if isinstance(exc, SLSError) else None
        self.retry_after = exc.retry_after if isinstance(exc, SLSError) else None
        self.stats.last_error_code = code
        if outcome is Outcome.REJECTED:
            if len(part) == 1:
                self._dead(part, code, message, request_id, status)
                return Outcome.DELIVERED  # the link works; this one record never will
            self.stats.bisections += 1
            mid = len(part) // 2
            halves = (part[:mid], part[mid:])
            for n, half in enumerate(halves):
                half_outcome = yield from self._send(dest, half)
                if half_outcome is not Outcome.DELIVERED:
                    if n == 0:  # the second half was never tried: give it back untouched
                        self.spool.release(halves[1])
                    return half_outcome
            return Outcome.DELIVERED
        throttled = outcome is Outcome.THROTTLED
        self.spool.release(
            part,
            error_code=code,
            message=message,
            request_id=request_id,
            throttled=throttled,
            status=status,
        )
        self.stats.retried += len(part)
        self.stats.retry_requests += 1
        if throttled:
            self.stats.throttled_requests += 1
        elif outcome is Outcome.CREDENTIALS:
            self.stats.credential_error_requests += 1
        return outcome

    def _dead(
        self,
        part: Batch,
        code: str,
        message: str | None,
        request_id: str | None,
        status: int | None,
    ) -> None:
        self.spool.dead_letter(
            part,
            error_code=code,
            message=message,
            request_id=request_id,
            attempts=part.max_attempts + 1,
            status=status,
        )
        self.stats.dead += len(part)


def _describe(exc: BaseException | None) -> tuple[str, str, str | None]:
    """(error code, message, request id) of a failure, never holding a secret."""
    if isinstance(exc, SLSError):
        return exc.error_code, exc.message, exc.request_id or None
    if exc is None:
        return "Unknown", "", None
    return type(exc).__name__, str(exc)[:500], None


class AsyncSender(Protocol):
    """What ``ship_async`` needs: ``AsyncPutLogsClient.put_raw``."""

    async def put_raw(self, project: str, logstore: str, raw: bytes) -> Any: ...


_T = TypeVar("_T")


async def ship_async(
    cycle: ShipCycle,
    batch: Batch,
    sender: AsyncSender,
    *,
    run_sync: Callable[[Callable[[], _T]], Awaitable[_T]] | None = None,
) -> Outcome:
    """Drive ``cycle.plan(batch)`` on asyncio: each request awaited on ``sender.put_raw``.

    ``run_sync`` runs each synchronous step of the plan (encoding, and the spool's SQLite
    ack/release/dead-letter) off the event loop, e.g.
    ``lambda fn: loop.run_in_executor(worker, fn)``; None runs them on the loop. Exceptions
    of the sender go to the plan (it classifies them); cancellation propagates, and the
    records not settled yet stay leased for the caller to give back.
    """
    plan = cycle.plan(batch)

    def step(value: SendResult) -> tuple[bool, Any]:
        # StopIteration cannot cross a Future: report the end as a value instead.
        try:
            return False, plan.send(value)
        except StopIteration as done:
            return True, done.value

    try:
        finished, value = step(None) if run_sync is None else await run_sync(lambda: step(None))
        while not finished:
            request: SendRequest = value
            try:
                result: SendResult = await sender.put_raw(
                    request.project, request.logstore, request.raw
                )
            except Exception as exc:  # the plan classifies it
                result = exc
            if run_sync is None:
                finished, value = step(result)
            else:
                finished, value = await run_sync(functools.partial(step, result))
    finally:
        with contextlib.suppress(ValueError):  # still running on the worker: it ends there
            plan.close()
    return value  # type: ignore[no-any-return]


class ThreadFlusher:
    """Ships one spool from a daemon thread until stopped.

    ``start()`` is idempotent; ``wake()`` is cheap enough for ``emit`` (called per record);
    ``flush(timeout)`` waits for what was spooled before it; ``stop(drain_timeout)`` sends
    what it can until the deadline and leaves the rest on disk.
    """

    def __init__(
        self,
        spool: SpoolBackend,
        sender: Sender,
        config: FlusherConfig | None = None,
        *,
        name: str = "yai-spool-flusher",
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        close_sender: bool = True,
    ) -> None:
        self.spool = spool
        self.sender = sender
        self.config = config or FlusherConfig()
        self.stats = FlusherStats()
        self._cycle = ShipCycle(spool, sender, self.config, self.stats, wall_clock)
        self._backoff = Backoff(self.config.retry, rng or random.Random())
        self._monotonic = monotonic
        self._name = name
        self._close_sender = close_sender
        self._work = threading.Event()  # something was appended in this process
        self._hurry = threading.Event()  # skip linger: flush() / stop() / a full batch waiting
        self._stop = threading.Event()
        # Cuts a backoff wait short: stop() (drain now) and flush() (try once more now, so a
        # flush during an outage answers after one attempt, not after a 30 s backoff).
        self._retry_now = threading.Event()
        # Set once the thread has tried the flusher lock: before that, "not the flusher" is
        # unknown, and flush() must not answer False just because the thread is young.
        self._lock_tried = threading.Event()
        self._progress = threading.Condition()
        self._settled = 0  # batches settled (any outcome), for flush() waiters
        # Attempts (lease + ship) started, and the latest one that failed: flush() answers
        # False only for a failure of an attempt started after it was called, not for one
        # that was already failing in flight when the link came back.
        self._attempts = 0
        self._failed_attempt = 0
        self._pending_wakes = 0
        self._drain_deadline: float | None = None
        # Set by stop() at its deadline: the requests in flight were cancelled and nothing of
        # this flusher may touch the spool any more (the caller closes it next).
        self._abandoned = threading.Event()
        self._senders: set[threading.Thread] = set()  # request threads still running
        # Batches whose settle (ack/release) failed on a spool error: still LEASED by us, so no
        # lease() returns them and no new flusher lock recovers them. Released (i.e. retried)
        # before anything new is leased, as soon as the spool is writable again.
        self._orphans: list[Batch] = []
        self._thread: threading.Thread | None = None
        self._last_thread: threading.Thread | None = None  # for join() after stop()
        self._lock = threading.Lock()

    # -- control (any thread) -------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._last_thread = self._thread
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the flusher thread to end; True when it has (or never ran).

        ``stop()`` returns after its drain deadline even if the thread is still finishing one
        request; whoever closes the spool afterwards joins first.
        """
        thread = self._last_thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def wake(self) -> None:
        """A record was appended: start lingering, or hurry once a full batch is waiting."""
        self._pending_wakes += 1  # racy by design: an estimate only decides when to hurry
        if not self._work.is_set():
            self._work.set()
        if self._pending_wakes >= self.config.max_batch_records and not self._hurry.is_set():
            self._hurry.set()

    def flush(self, timeout: float) -> bool:
        """Wait until every record spooled before this call is settled, or a send fails.

        Returns True when all of them were delivered or dead-lettered; False on timeout, on
        a failed send (the records stay spooled and are retried), or when this process is
        not the flusher of the spool. A backoff in progress is cut short: flush asks for one
        attempt now, so during an outage it answers after that attempt, not at its timeout.
        """
        deadline = self._monotonic() + timeout
        target = self.spool.high_water()
        with self._progress:
            started = self._attempts
        self._hurry.set()
        self._work.set()
        self._retry_now.set()
        if self.running:  # a flusher started a moment ago may not have tried the lock yet
            self._lock_tried.wait(max(0.0, deadline - self._monotonic()))
        while True:
            if self.spool.pending_through(target) == 0:
                return True
            with self._progress:
                if self._failed_attempt > started or not self.stats.is_flusher:
                    return False
                left = deadline - self._monotonic()
                if left <= 0 or not self.running:
                    return False
                self._progress.wait(min(left, self.config.poll_interval))
                self._hurry.set()

    def stop(self, drain_timeout: float = 5.0) -> bool:
        """Drain until ``drain_timeout`` passes, then stop; the rest stays in the spool.

        At the deadline the requests still in flight are cancelled and the flusher is
        abandoned (see the module invariants): their batches stay leased for the next flusher.
        Returns True when the flusher's threads have all ended (the caller may close the
        spool either way: an abandoned flusher never touches it again).
        """
        thread = self._thread
        if thread is None:
            return True
        deadline = self._monotonic() + max(drain_timeout, 0.0)
        self._drain_deadline = deadline
        self._stop.set()
        self._retry_now.set()
        self._hurry.set()
        self._work.set()
        self._thread = None
        if thread is threading.current_thread():
            return False
        thread.join(max(0.0, deadline - self._monotonic()))
        if thread.is_alive():
            self.abandon()
            thread.join(ABANDON_GRACE)
        if thread.is_alive():
            internal_log.warning(
                "yai-spool flusher %s: a request is still running after the stop deadline "
                "and its sender cannot be cancelled; the thread is left behind and will not "
                "touch the spool (its batch stays leased for the next flusher)",
                self._name,
            )
            return False
        return True

    def abandon(self) -> None:
        """Cancel the requests in flight; from now on nothing of this flusher touches the spool.

        Idempotent, any thread. The batches in flight stay leased (recovered by the next
        flusher that takes the lock).
        """
        if self._abandoned.is_set():
            return
        self._abandoned.set()
        self._stop.set()
        self._retry_now.set()
        self._hurry.set()
        self._work.set()
        abort_sender(self.sender)
        with self._progress:
            self._progress.notify_all()

    @property
    def abandoned(self) -> bool:
        """True once :meth:`abandon` ran (at the stop deadline, or explicitly)."""
        return self._abandoned.is_set()

    # -- the loop (flusher thread) --------------------------------------------------------

    def _run(self) -> None:
        mark_flusher_thread()
        last_checkpoint = self._monotonic()
        try:
            while not self._stop.is_set():
                try:
                    if not self._ensure_lock():
                        self._stop.wait(self.config.poll_interval)
                        continue
                    shipped = self._one_batch()
                except Exception:
                    if self._abandoned.is_set():
                        break  # the spool may be closed under us: nothing to report
                    # A spool that cannot be written right now (disk full, read-only, busy)
                    # must not end the thread: the condition clears and records keep coming.
                    self._spool_failed()
                    continue
                now = self._monotonic()
                if now - last_checkpoint >= self.config.checkpoint_interval:
                    last_checkpoint = now
                    self._checkpoint()
                if shipped is None:  # nothing ready: sleep until woken or the poll interval
                    self._work.wait(self.config.poll_interval)
                    if self._work.is_set() and not self._stop.is_set():
                        self._linger()
                    self._work.clear()
            if not self._abandoned.is_set():
                try:
                    self._drain()
                except Exception as exc:  # the spool cannot be written at exit: keep the rest
                    report_internal(
                        "flusher-drain",
                        logging.WARNING,
                        "yai-spool flusher: could not drain at stop; records stay in the spool",
                        exc=exc,
                    )
        except Exception:  # a bug, or the spool closed under an abandoned flusher
            if not self._abandoned.is_set():  # pragma: no cover - a bug
                report_internal(
                    "flusher-crash",
                    logging.ERROR,
                    "yai-spool flusher crashed; records stay in the spool",
                    exc=sys.exc_info()[1],
                )
        finally:
            self._lock_tried.set()
            self._join_senders()
            if not self._abandoned.is_set():
                self._checkpoint()
            # A file lock, not SQLite: safe even once the spool is closed. Leases we leave
            # behind are recovered by whoever takes the lock next.
            self.spool.release_flusher()
            self.stats.is_flusher = False
            if self._close_sender:
                try:
                    self.sender.close()
                except Exception:
                    internal_log.debug("closing the sender failed", exc_info=True)
            with self._progress:
                self._progress.notify_all()

    def _ensure_lock(self) -> bool:
        if self.spool.is_flusher:
            return True
        try:
            self.stats.is_flusher = self.spool.acquire_flusher()
        finally:
            self._lock_tried.set()
        return self.stats.is_flusher

    def _spool_failed(self) -> None:
        """The spool raised (lease/ack/lock): count a failure, back off, keep the thread."""
        delay = self._backoff.next_delay(Outcome.RETRY)
        failures = self._backoff.failures
        self.stats.consecutive_failures = failures
        self.stats.last_outcome = "spool_error"
        with self._progress:
            self._failed_attempt = self._attempts
            self._progress.notify_all()
        # One line per minute at most (the traceback only at DEBUG): a full disk retried for
        # hours must not fill the application's stderr through logging's last resort.
        report_internal(
            f"flusher-spool-error:{self._name}",
            logging.WARNING,
            "yai-spool flusher: spool error, %d consecutive failures; retrying",
            failures,
            exc=sys.exc_info()[1],
        )
        self._pause(max(delay, min(self.config.poll_interval, self.config.retry.cap)))

    def _pause(self, delay: float) -> None:
        """Back off for ``delay``; stop() and flush() cut it short."""
        self._retry_now.wait(delay)
        self._retry_now.clear()
        if self._stop.is_set():
            self._retry_now.set()  # keep later waits short while stopping

    def _linger(self) -> None:
        if self.config.linger > 0 and not self._hurry.is_set():
            self._hurry.wait(self.config.linger)

    def _one_batch(self) -> Outcome | None:
        """Lease and ship a window of batches; None when nothing is ready. Waits out a backoff.

        Returns the outcome that paces the loop: the first failure of the window, else
        DELIVERED.
        """
        self._pending_wakes = 0
        if not self._stop.is_set():
            # Consumed: this window ships everything ready. Left set, one full batch would
            # keep the loop in a hurry for good, shipping each handful of records that
            # arrived during the last request in a request of its own (138 requests for 10k
            # records, at 2x the CPU per record). wake() sets it again once a full batch
            # waits; flush() sets it again after every window it waits for.
            self._hurry.clear()
        with self._progress:
            self._attempts += 1
        if self._abandoned.is_set():
            return None
        self._release_orphans()  # raises while the spool is still unwritable
        outcomes, last_full = self._ship_window(deadline=None)
        if self._abandoned.is_set():
            return None  # the window was cancelled: its outcomes no longer pace anything
        if not outcomes:
            self._hurry.clear()
            return None
        failed = [o for o in outcomes if o is not Outcome.DELIVERED]
        outcome = failed[0] if failed else Outcome.DELIVERED
        delay = 0.0
        hint = self._cycle.take_retry_after()
        for each in outcomes:  # the backoff counts every batch's outcome, as one by one
            delay = self._backoff.next_delay(each, hint if each is not Outcome.DELIVERED else None)
        self.stats.consecutive_failures = self._backoff.failures
        with self._progress:
            self._settled += len(outcomes)
            if failed:
                self._failed_attempt = self._attempts
                self._log_failure(outcome)
            self._progress.notify_all()
        if delay:
            self._pause(delay)
        elif not last_full and not self._stop.is_set():
            self._linger()
        return outcome

    def _ship_window(self, deadline: float | None) -> tuple[list[Outcome], bool]:
        """Lease batches and keep up to ``max_in_flight`` requests in flight until done.

        Stops leasing after a batch that is not full (nothing more is ready: linger), after
        a failure, at ``deadline``, or when this instance stops being the flusher; always
        waits for every request it sent and settles its batch before returning. Returns
        the outcome of every batch, and whether the last batch leased was full.
        """
        config = self.config
        active: dict[concurrent.futures.Future[Any], tuple[Any, Batch]] = {}
        outcomes: list[Outcome] = []
        leasing = True
        last_full = False
        failure: Exception | None = None  # a spool error while requests were in flight
        while True:
            while leasing and len(active) < config.max_in_flight:
                if deadline is not None and self._monotonic() >= deadline:
                    leasing = False
                    break
                if self._abandoned.is_set():
                    leasing = False
                    break
                if not self.spool.is_flusher:
                    leasing = False
                    break
                try:
                    batch = self.spool.lease(
                        config.max_batch_records,
                        config.max_batch_bytes,
                        lease_seconds=config.lease_seconds,
                    )
                except Exception as exc:
                    if not active:
                        raise
                    failure, leasing = exc, False  # settle what is in flight, then raise
                    break
                if batch is None:
                    leasing = False
                    break
                last_full = len(batch) >= config.max_batch_records
                leasing = last_full
                plan = self._cycle.plan(batch)
                self._advance(plan, batch, None, active, outcomes)
            if not active:
                if failure is not None:
                    raise failure
                return outcomes, last_full
            if any(o is not Outcome.DELIVERED for o in outcomes):
                leasing = False
            done, _ = concurrent.futures.wait(
                active, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                plan, batch = active.pop(future)
                if self._abandoned.is_set():
                    # Cancelled at the stop deadline: settle nothing, the batch stays leased.
                    plan.close()
                    continue
                error = future.exception()
                self._advance(plan, batch, error if error is not None else future.result(),
                              active, outcomes)  # fmt: skip

    def _advance(
        self,
        plan: Generator[SendRequest, SendResult, Outcome],
        batch: Batch,
        result: SendResult,
        active: dict[concurrent.futures.Future[Any], tuple[Any, Batch]],
        outcomes: list[Outcome],
    ) -> None:
        """Feed ``result`` to ``plan``; send its next request, or record its outcome.

        A spool failure inside the plan (an ack or release on a full disk) parks the batch
        as an orphan, released as soon as the spool can be written; then the window's other
        requests still finish and settle before the error reaches the loop.
        """
        try:
            while True:
                request = next(plan) if result is None else plan.send(result)
                if self.config.max_in_flight == 1:
                    try:
                        result = self.sender.put_raw(request.project, request.logstore, request.raw)
                    except Exception as exc:  # the plan classifies it
                        result = exc
                    if self._abandoned.is_set():
                        plan.close()  # cancelled at the stop deadline: the batch stays leased
                        return
                    continue
                active[self._send_in_background(request)] = (plan, batch)
                return
        except StopIteration as done:
            outcomes.append(done.value)
        except Exception:
            if self._abandoned.is_set():
                return  # the spool may be closed under us; the batch stays leased
            # At least once: a batch SLS accepted is sent again after the release.
            self._orphans.append(batch)
            with contextlib.suppress(Exception):
                self._release_orphans()
            if active:  # settle what is in flight first; the loop then sees the failure
                outcomes.append(Outcome.RETRY)
                return
            raise

    def _send_in_background(self, request: SendRequest) -> concurrent.futures.Future[Any]:
        """``put_raw`` on a thread of its own; the future holds its result or exception.

        A daemon thread per request (a few per second at most: each carries a whole batch),
        not an executor: executor threads are joined at interpreter exit, and a request to
        an SLS that never answers must not hold the application's exit.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()

        def send() -> None:
            mark_flusher_thread()
            try:
                future.set_result(
                    self.sender.put_raw(request.project, request.logstore, request.raw)
                )
            except BaseException as exc:  # handed to the plan, which classifies it
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._senders.discard(threading.current_thread())

        thread = threading.Thread(target=send, name=f"{self._name}-send", daemon=True)
        with self._lock:
            self._senders.add(thread)
        thread.start()
        return future

    def _join_senders(self) -> None:
        """Wait for request threads that are still finishing (their futures are already set,
        or they were aborted): when the flusher thread ends, none of its threads is left."""
        deadline = self._monotonic() + ABANDON_GRACE
        while True:
            with self._lock:
                pending = [t for t in self._senders if t.is_alive()]
            if not pending:
                return
            left = deadline - self._monotonic()
            if left <= 0:
                return  # a sender that cannot abort: left behind, it never touches the spool
            pending[0].join(left)

    def _release_orphans(self) -> None:
        while self._orphans:
            self.spool.release(self._orphans[0])
            self._orphans.pop(0)

    def _drain(self) -> None:
        """After stop(): ship until the spool is empty, the deadline passes, or a send fails."""
        deadline = self._drain_deadline or self._monotonic()
        with contextlib.suppress(Exception):
            self._release_orphans()
        if self._monotonic() >= deadline or not self._ensure_lock():
            return  # stopped before this thread ever took the lock: take it now, or give up
        while self._monotonic() < deadline and self.spool.is_flusher:
            outcomes, _ = self._ship_window(deadline=deadline)
            if self._abandoned.is_set():
                return
            with self._progress:
                self._progress.notify_all()
            if not outcomes or any(o is not Outcome.DELIVERED for o in outcomes):
                return  # empty, or an outage at exit: leave the rest on disk

    def _checkpoint(self) -> None:
        try:
            self.spool.checkpoint()
        except Exception:
            internal_log.debug("WAL checkpoint failed", exc_info=True)

    def _log_failure(self, outcome: Outcome) -> None:
        failures = self._backoff.failures
        # Rate limit: the first failure and then every power of two, so an outage of hours
        # writes a few dozen lines, not millions.
        if failures & (failures - 1) == 0:
            level = logging.ERROR if outcome is Outcome.CREDENTIALS else logging.WARNING
            internal_log.log(
                level,
                "yai-spool: PutLogs failed (%s, %s), %d consecutive failures; records kept",
                outcome.name.lower(),
                self.stats.last_error_code,
                failures,
            )
