"""The shipping cycle of one leased batch, sans I/O, and the two plain drivers of it.

Owns what every flusher shares: ``ShipCycle.plan(batch)`` is a generator that turns one
leased batch into ``SendRequest``s (the body is the batch's stored logs plus a trailer:
nothing is decoded or encoded per record), bisects rejected batches down to the poison
records, and settles every record with exactly one of ack / release / dead-letter.
``ShipCycle.ship`` drives it with a blocking ``Sender``, :func:`ship_async` with an
``AsyncSender`` on asyncio; the loops that lease batches and pace themselves are
:mod:`yai_spool.shipping.thread` and :mod:`yai_spool.shipping.aio`.

Invariants:
- A record is deleted only after SLS answered 200 for a request that contained it
  (``Spool.ack``). Anything else leaves it READY for a later attempt or parks it DEAD with
  the SLS errorCode, message and request id. Delivery is therefore *at least once*: a
  flusher killed between the 200 and the ack resends that one batch.
- Outcomes come from ``errors.classify_exception`` only:
  DELIVERED -> ack; RETRY -> release + backoff; THROTTLED -> release + throttle backoff (a
  quota error slows the send rate, it is not a failure of the data); CREDENTIALS -> release
  + long backoff, surfaced as the spool's last error (the data is kept: a typo in a
  logstore name must not dead-letter a day of logs); REJECTED -> bisect, and dead-letter
  only the single records SLS refuses on their own. The waits are the driver's, from the
  outcome the cycle returns (``retry.Backoff``).
- Records older than ``RetryPolicy.max_age`` are dead-lettered (``MaxAgeExceeded``), never
  silently deleted.
- The plan does no network I/O; a driver that closes it early (cancelled) leaves the
  unsettled records leased and gives them back itself.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from yai_spool.shipping.config import FlusherConfig, FlusherStats
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
    "SendRequest",
    "SendResult",
    "Sender",
    "ShipCycle",
    "abort_sender",
    "log_send_failure",
    "ship_async",
]

internal_log = logging.getLogger("yai_spool.internal")


class Sender(Protocol):
    """What the flusher needs from a PutLogs client (``PutLogsClient`` and its adapter).

    A sender may also have ``abort()``: cancel every call in flight from another thread
    (``PutLogsClient.abort``). Without it, ``ThreadFlusher.stop`` cannot end a request that
    never answers; the thread is then left behind, abandoned (it never touches the spool).
    """

    def put_raw(self, project: str, logstore: str, raw: bytes) -> Any: ...

    def close(self) -> None: ...


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


#: Runs one synchronous step of a plan somewhere (a worker thread) and awaits its result.
#: Each step returns its own type, which one type variable of ``ship_async`` cannot say.
RunSync = Callable[[Callable[[], Any]], Awaitable[Any]]


async def ship_async(
    cycle: ShipCycle,
    batch: Batch,
    sender: AsyncSender,
    *,
    run_sync: RunSync | None = None,
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


def log_send_failure(outcome: Outcome, error_code: str, failures: int) -> None:
    """Say on ``yai_spool.internal`` that PutLogs failed: the records are kept.

    Rate limited for every driver alike: the first failure of a run and then every power of
    two, so an outage of hours writes a few dozen lines, not millions. Credential errors
    (a configuration to fix) are ERROR, the others WARNING.
    """
    if failures & (failures - 1) == 0:
        level = logging.ERROR if outcome is Outcome.CREDENTIALS else logging.WARNING
        internal_log.log(
            level,
            "yai-spool: PutLogs failed (%s, %s), %d consecutive failures; records kept",
            outcome.name.lower(),
            error_code,
            failures,
        )
