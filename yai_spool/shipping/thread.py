"""The thread flusher: leases batches from a spool, ships them with PutLogs, acks only on 200.

Owns the delivery loop of one spool on a background thread (the in-process flusher of
``SpoolHandler`` and ``MemoryQueueHandler``, and the unit of the ``yai-spool run`` daemon):
``ThreadFlusher`` runs ``ShipCycle`` plans (:mod:`yai_spool.shipping.cycle`) with up to
``FlusherConfig.max_in_flight`` requests in flight: while one request waits for SLS, the next
batch is leased and sent, and answers are settled as they come.

Invariants:
- Exactly one retry layer: the client never retries; this loop waits after failures,
  with full-jitter exponential backoff from a frozen ``RetryPolicy``. Every wait is on an
  Event, so ``stop()`` cuts a backoff short.
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
- The flusher's threads mark themselves (``marks.mark_flusher_thread``) so records logged
  *by* the shipping path (httpx debug logs, our own diagnostics) are not fed back into the
  spool.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from yai_spool.diagnostics import report_internal
from yai_spool.shipping.config import FlusherConfig, FlusherStats
from yai_spool.shipping.cycle import (
    Sender,
    SendRequest,
    SendResult,
    ShipCycle,
    abort_sender,
    log_send_failure,
)
from yai_spool.shipping.marks import mark_flusher_thread
from yai_spool.shipping.retry import Backoff
from yai_spool.sls.errors import Outcome
from yai_spool.spool import Batch, SpoolBackend

__all__ = ["ABANDON_GRACE", "ThreadFlusher"]

internal_log = logging.getLogger("yai_spool.internal")

#: How long ``ThreadFlusher.stop`` waits, after cancelling the requests in flight at its
#: deadline, for the flusher's threads to end (an aborted socket fails in microseconds; this
#: only covers the thread switches). Part of the documented shutdown bound.
ABANDON_GRACE = 0.15


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
                log_send_failure(outcome, self.stats.last_error_code, self._backoff.failures)
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
