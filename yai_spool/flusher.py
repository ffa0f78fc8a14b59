"""The flusher: leases batches from a spool, ships them with PutLogs, acks only on 200.

Owns the delivery loop of one spool and the single retry layer of the project: what to do
with a batch after each outcome, how long to wait, and when records leave the spool.

``ShipCycle`` is the sans-I/O core shared by every driver: ``ShipCycle.plan(batch)`` is a
generator that turns one leased batch into ``SendRequest``s (encoded straight from the
spool's JSON texts, one entry at a time), bisects rejected batches down to the poison records,
and settles every record with exactly one of ack / release / dead-letter. ``ShipCycle.ship``
drives it with a blocking sender, ``ship_async`` on asyncio. ``ThreadFlusher`` runs ``ship``
from a background thread (the in-process flusher of ``SpoolHandler`` and the unit of the
``yai-spool run`` daemon); it encodes in short stretches and pauses between them while
producer threads of the process are active, so they are never kept from the GIL for long.

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
- The flusher thread marks itself (``in_flusher_thread``) so records logged *by* the
  shipping path (httpx debug logs, our own diagnostics) are not fed back into the spool.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from yai_spool.destination import DestKey, decode_dest
from yai_spool.encoding import encode_entries
from yai_spool.errors import (
    EncodeError,
    Outcome,
    SLSError,
    classify_exception,
)
from yai_spool.model import Log
from yai_spool.retry import DEFAULT_RETRY, Backoff, RetryPolicy
from yai_spool.spool import Batch, Spool

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


class Sender(Protocol):
    """What the flusher needs from a PutLogs client (``PutLogsClient`` and its adapter)."""

    def put_raw(self, project: str, logstore: str, raw: bytes) -> Any: ...

    def close(self) -> None: ...


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


@dataclass(slots=True)
class FlusherStats:
    """In-process counters of one flusher (the spool keeps the durable ones)."""

    requests: int = 0
    delivered: int = 0
    retried: int = 0
    throttled: int = 0
    credential_errors: int = 0
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


def _entry_log(entry: dict[str, Any]) -> Log:
    """The ``Log`` of one spool entry (what ``encode_entries`` encodes without building it)."""
    contents = tuple((k, v) for k, v in entry["contents"])
    return Log(int(entry["time"]), contents, entry.get("time_ns"))


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

# Records encoded per stretch of pure Python. Between stretches the cycle calls its
# ``breathe`` hook, so a producer thread of the same process is never kept from the GIL for
# a whole batch (~30 ms for 4096 records): 128 records are ~1 ms of work.
_ENCODE_SLICE = 128
_BREATHE_SECONDS = 0.00005
_EMPTY_TRAILER_LEN = len(encode_entries((), "", "", ()))


@dataclass
class ShipCycle:
    """Ship one leased batch and settle every record in it; the shared core of the drivers.

    ``plan(batch)`` is the whole cycle as a generator that does no network I/O: it yields
    each ``SendRequest`` and receives the sender's result (or the exception it raised),
    settling records in the spool itself (ack / release / dead-letter). ``ship(batch)`` drives
    it with the synchronous ``sender``; :func:`ship_async` drives it on asyncio. Both return
    the outcome that should pace the loop: DELIVERED when the link worked (even if poison
    records were dead-lettered), otherwise the failure class.

    ``breathe`` (optional) is called between encoding stretches of ``_ENCODE_SLICE`` records:
    the thread flusher uses it to hand the GIL to producer threads.
    """

    spool: Spool
    sender: Sender
    config: FlusherConfig
    stats: FlusherStats = field(default_factory=FlusherStats)
    wall_clock: Callable[[], float] = time.time
    breathe: Callable[[], None] | None = None

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
        """The LogGroup body of ``part``: entries decoded and encoded one at a time.

        Streaming (``iter_entries``) keeps no batch of decoded dicts alive, so the cyclic GC
        has nothing to walk. Long batches are encoded in stretches; a LogGroup body is the
        concatenation of its fields, so the Logs of each stretch followed by one trailer
        (topic, source, tags) is byte-identical to encoding all at once.
        """
        topic = self.config.topic if self.config.topic is not None else dest.topic
        entries = part.iter_entries()
        n = len(part)
        if self.breathe is None or n <= _ENCODE_SLICE:
            return encode_entries(entries, topic, dest.source, dest.tags)
        pieces = []
        for _ in range(0, n, _ENCODE_SLICE):
            body = encode_entries(itertools.islice(entries, _ENCODE_SLICE), "", "", ())
            pieces.append(body[: len(body) - _EMPTY_TRAILER_LEN])
            self.breathe()
        pieces.append(encode_entries((), topic, dest.source, dest.tags))
        return b"".join(pieces)

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
            result = yield SendRequest(project, logstore, raw, len(part))
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
        if throttled:
            self.stats.throttled += 1
        elif outcome is Outcome.CREDENTIALS:
            self.stats.credential_errors += 1
        else:
            self.stats.retried += len(part)
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
        spool: Spool,
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
        self._cycle = ShipCycle(
            spool, sender, self.config, self.stats, wall_clock, breathe=self._breathe
        )
        # wake() counts appends of this process; a change since the last breathe means a
        # producer thread is active and must get the GIL between encoding stretches.
        self._wakes = 0
        self._wakes_seen = 0
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

    def _breathe(self) -> None:
        """Between encoding stretches: let producer threads of this process have the GIL.

        A producer releases the GIL inside SQLite on every append; without a pause it waits
        for the whole switch interval (5 ms) each time the flusher computes. A short real
        sleep hands the GIL over for sure (``sleep(0)`` often re-takes it first). Only while
        producers are active: a pure drain (the daemon) never pauses.
        """
        wakes = self._wakes
        if wakes != self._wakes_seen:
            self._wakes_seen = wakes
            time.sleep(_BREATHE_SECONDS)

    def wake(self) -> None:
        """A record was appended: start lingering, or hurry once a full batch is waiting."""
        self._pending_wakes += 1  # racy by design: an estimate only decides when to hurry
        self._wakes += 1  # racy too: any change tells _breathe that producers are active
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

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Drain until ``drain_timeout`` passes, then stop; the rest stays in the spool."""
        thread = self._thread
        if thread is None:
            return
        self._drain_deadline = self._monotonic() + max(drain_timeout, 0.0)
        self._stop.set()
        self._retry_now.set()
        self._hurry.set()
        self._work.set()
        if thread is not threading.current_thread():
            # The thread honours the deadline itself; the margin covers one in-flight request
            # whose own timeout is bounded by the client's total deadline.
            thread.join(drain_timeout + 1.0)
        self._thread = None

    # -- the loop (flusher thread) --------------------------------------------------------

    def _run(self) -> None:
        _local.flusher = True
        last_checkpoint = self._monotonic()
        try:
            while not self._stop.is_set():
                try:
                    if not self._ensure_lock():
                        self._stop.wait(self.config.poll_interval)
                        continue
                    shipped = self._one_batch()
                except Exception:
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
            self._drain()
        except Exception:  # pragma: no cover - a bug; never take the application down
            internal_log.exception("yai-spool flusher crashed; records stay in the spool")
        finally:
            self._lock_tried.set()
            self._checkpoint()
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
        if failures & (failures - 1) == 0:  # rate-limited like _log_failure
            internal_log.warning(
                "yai-spool flusher: spool error, %d consecutive failures; retrying",
                failures,
                exc_info=True,
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
        """Lease and ship one batch; None when nothing is ready. Waits out any backoff."""
        self._pending_wakes = 0
        with self._progress:
            self._attempts += 1
        self._release_orphans()  # raises while the spool is still unwritable
        batch = self.spool.lease(
            self.config.max_batch_records,
            self.config.max_batch_bytes,
            lease_seconds=self.config.lease_seconds,
        )
        if batch is None:
            self._hurry.clear()
            return None
        outcome = self._ship(batch)
        delay = self._backoff.next_delay(outcome)
        self.stats.consecutive_failures = self._backoff.failures
        with self._progress:
            self._settled += 1
            if outcome is not Outcome.DELIVERED:
                self._failed_attempt = self._attempts
                self._log_failure(outcome)
            self._progress.notify_all()
        if delay:
            self._pause(delay)
        elif len(batch) < self.config.max_batch_records and not self._stop.is_set():
            self._linger()
        return outcome

    def _ship(self, batch: Batch) -> Outcome:
        try:
            return self._cycle.ship(batch)
        except Exception:
            # The spool failed mid-cycle (an ack or release on a full or read-only disk): the
            # records must not wait for their lease to expire. Release them now, or as soon as
            # the spool can be written. At least once: a batch SLS accepted is sent again.
            self._orphans.append(batch)
            with contextlib.suppress(Exception):
                self._release_orphans()
            raise

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
            batch = self.spool.lease(
                self.config.max_batch_records,
                self.config.max_batch_bytes,
                lease_seconds=self.config.lease_seconds,
            )
            if batch is None:
                return
            outcome = self._ship(batch)
            with self._progress:
                self._progress.notify_all()
            if outcome is not Outcome.DELIVERED:
                return  # an outage at exit: leave the rest on disk, do not stall the exit

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
