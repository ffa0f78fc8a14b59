"""asyncio delivery (schemes 3 + 4 of the design note): a flusher task on a native async client.

Owns :class:`AsyncFlusher`, the asyncio driver of the shared shipping core, and the start/stop
plumbing: :func:`lifespan` for FastAPI / Starlette
(``FastAPI(lifespan=yai_spool.handlers.aio.lifespan(handler))``) and :func:`running` (or
``async with AsyncFlusher(handler)``) for any asyncio program. It is the asyncio public
surface: ``AsyncSpoolHandler`` (:mod:`yai_spool.handlers.async_spool`) is re-exported here.

Imports run one way: this module builds handlers with
:func:`yai_spool.handlers.configure.make_handler`, which imports the handler classes, none of
which imports this module (they only need the flusher's link protocol).

How it works:

- ``emit`` stays synchronous and cheap: the handler appends to its queue (the durable
  :class:`~yai_spool.spool.Spool`, or a :class:`~yai_spool.spool.memory.MemorySpool`) and wakes
  the flusher: an ``asyncio.Event`` set directly on the loop's thread, or through one
  ``loop.call_soon_threadsafe`` per burst from other threads. ``emit`` never touches the
  network and never awaits.
- The flusher task leases batches and ships each through the shared ``ShipCycle`` over
  :class:`~yai_spool.sls.client.AsyncPutLogsClient` (httpx, native asyncio): every PutLogs call
  is awaited on the loop, never made by a thread pool. The batching, the one retry policy,
  bisection and dead-lettering are ``ShipCycle``'s: the code the thread flusher and the
  daemon run, driven by ``flusher.ship_async`` over the sans-I/O ``ShipCycle.plan``.
- At most ``max_in_flight`` PutLogs requests are in flight (an ``asyncio.Semaphore``); a
  failure pauses leasing for the policy's full-jitter backoff.
- Work that would stall the loop (encoding a batch, the durable spool's SQLite lease/ack/
  release) runs on one dedicated worker thread (``offload=True``, the default), handed over
  through ``ship_async``'s ``run_sync``; ``offload=False`` keeps everything on the loop.

Invariants:

- Delivery is at least once, as everywhere: a record leaves the queue only on HTTP 200 (or as
  a dead letter); ``stop()`` drains until its deadline and then cancels what is in flight,
  giving those batches back untouched (no attempt counted).
- Durable spool: what is not delivered at ``stop()`` stays on disk for the next start, the
  thread flusher, or the daemon. Memory spool: it is lost when the handler closes, and
  counted (``unsent_at_close``).
- Records logged by the flusher task itself (and by whatever it awaits: httpx) are never
  queued (``modes.core.shipping_task``).
- One flusher per queue: a second ``AsyncFlusher`` for the same handler refuses to start;
  the durable spool's flusher lock makes other processes stand by.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import random
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

from yai_spool.diagnostics import report_internal
from yai_spool.handlers.async_spool import AsyncSpoolHandler
from yai_spool.handlers.configure import make_handler
from yai_spool.handlers.core import asyncio_handlers, shipping_task
from yai_spool.shipping.flusher import FlusherConfig, FlusherStats, ShipCycle, ship_async
from yai_spool.shipping.retry import Backoff
from yai_spool.sls.errors import Outcome
from yai_spool.spool import Batch, SpoolBackend

__all__ = [
    "AsyncFlusher",
    "AsyncSpoolHandler",
    "lifespan",
    "running",
]

internal_log = logging.getLogger("yai_spool.internal")

_T = TypeVar("_T")


class AsyncCapable(Protocol):
    """A handler an :class:`AsyncFlusher` can drain (``flusher="asyncio"`` handlers)."""

    @property
    def spool(self) -> SpoolBackend:
        """The handler's queue (read-only here: a ``Spool`` or ``MemorySpool`` attribute)."""
        ...

    flusher_config: FlusherConfig
    max_in_flight: int
    close_timeout: float

    def make_async_sender(self) -> Any: ...

    def attach_flusher(self, link: Any) -> None: ...

    def detach_flusher(self, link: Any) -> None: ...


async def _wait(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; True if it is set."""
    if event.is_set():
        return True
    if timeout is not None and timeout <= 0:
        return False
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True


class AsyncFlusher:
    """Drain one handler's queue (or a bare spool) from an asyncio task.

    Args:
        handler: a handler built for asyncio (``make_handler(mode="asyncio", ...)``,
            :class:`AsyncSpoolHandler`, or ``MemoryQueueHandler(flusher="asyncio")``).
            Or, without a handler:
        spool, sender, config: a spool (``Spool``/``MemorySpool``), an async client with
            ``async put_raw(project, logstore, raw)`` and ``async aclose()``, and the
            ``FlusherConfig``.
        max_in_flight: PutLogs requests in flight at once (default: the handler's, else 4).
        drain_timeout: default bound of :meth:`stop` (default: the handler's
            ``close_timeout``, else 5 s).
        offload: run the plan's synchronous steps (encoding a batch, spool lease/ack/
            release) on one dedicated worker thread instead of the loop (default True);
            network I/O is always awaited on the loop.

    Use ``async with AsyncFlusher(handler):`` or ``await start()`` / ``await stop()``.
    """

    def __init__(
        self,
        handler: AsyncCapable | None = None,
        *,
        spool: SpoolBackend | None = None,
        sender: Any = None,
        config: FlusherConfig | None = None,
        max_in_flight: int | None = None,
        drain_timeout: float | None = None,
        offload: bool = True,
        rng: random.Random | None = None,
        name: str = "yai-spool-aio-flusher",
    ) -> None:
        if handler is None and (spool is None or sender is None):
            raise ValueError("AsyncFlusher needs a handler, or a spool and a sender")
        self.handler = handler
        self.spool: SpoolBackend = (
            spool if spool is not None else handler.spool  # type: ignore[union-attr]
        )
        self.config = config or (handler.flusher_config if handler else FlusherConfig())
        if max_in_flight is None:
            max_in_flight = getattr(handler, "max_in_flight", 4)
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        self.max_in_flight = max_in_flight
        self.drain_timeout = (
            drain_timeout
            if drain_timeout is not None
            else float(getattr(handler, "close_timeout", 5.0))
        )
        # Encoding a batch (CPU) and the durable spool's SQLite work stay off the loop:
        # measured in bench_modes, this halves the loop lag of the memory queue too.
        self.offload = offload
        self.stats = FlusherStats()
        self._sender = sender
        self._rng = rng or random.Random()
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._task: asyncio.Task[None] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._run_sync: Callable[[Callable[[], Any]], Any] | None = None
        self._owns_sender = False
        self.link = _Link(self)

    # -- control (on the loop) ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the flusher task on the running loop (idempotent)."""
        if self.running:
            return
        loop = asyncio.get_running_loop()
        if self.handler is not None:
            self.handler.attach_flusher(self.link)  # refuses a second flusher: before anything
        self._loop, self._loop_thread = loop, threading.get_ident()
        self._reset_state()
        self._owns_sender = self._sender is None
        if self._sender is None:
            self._sender = self.handler.make_async_sender()  # type: ignore[union-attr]
        if self.offload:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"{self._name}-worker"
            )
            self._run_sync = self._offloaded
        self._cycle = ShipCycle(self.spool, self._sender, self.config, self.stats)
        # A fresh context: the flusher must not carry the request context of whoever
        # started it, and marks itself so its own records (httpx) are never queued.
        ctx = contextvars.Context()
        ctx.run(shipping_task.set, True)
        self._task = loop.create_task(self._run(), name=self._name, context=ctx)

    def _reset_state(self) -> None:
        self._work = asyncio.Event()
        self._hurry = asyncio.Event()
        self._stop = asyncio.Event()
        self._retry_now = asyncio.Event()
        self._progress = asyncio.Event()
        self._lock_tried = asyncio.Event()
        self._sem = asyncio.Semaphore(self.max_in_flight)
        self._inflight: set[asyncio.Task[None]] = set()
        self._backoff = Backoff(self.config.retry, self._rng)
        self._resume_at = 0.0
        self._pending_wakes = 0
        self._wake_scheduled = False
        self._attempts = 0
        self._failed_attempt = 0
        self._drain_deadline: float | None = None
        self._stopping = False

    async def stop(self, drain_timeout: float | None = None) -> None:
        """Drain until ``drain_timeout`` passes (or the queue is empty, or a send fails),
        then cancel what is in flight (those batches go back untouched) and stop."""
        task = self._task
        if task is None:
            return
        timeout = self.drain_timeout if drain_timeout is None else max(drain_timeout, 0.0)
        self._drain_deadline = time.monotonic() + timeout
        self._stopping = True
        for event in (self._stop, self._retry_now, self._hurry, self._work):
            event.set()
        try:
            # The task honours the deadline itself; the margin covers cancelling one request.
            await asyncio.wait_for(asyncio.shield(task), timeout + 2.0)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        finally:
            self._task = None
            if self.handler is not None:
                self.handler.detach_flusher(self.link)
            if self._executor is not None:
                self._executor.shutdown(wait=False)
            self._executor, self._run_sync = None, None

    async def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record queued before this call is settled, or a send fails.

        True when all of them were delivered or dead-lettered; False on timeout, on a failed
        send (the records stay queued and are retried), or when another process holds the
        durable spool's flusher lock. A backoff in progress is cut short.
        """
        if not self.running:
            return False
        deadline = time.monotonic() + timeout
        target = await self._call(self.spool.high_water)
        started = self._attempts
        self._resume_at = 0.0
        for event in (self._hurry, self._work, self._retry_now):
            event.set()
        await _wait(self._lock_tried, deadline - time.monotonic())
        while True:
            if await self._call(self.spool.pending_through, target) == 0:
                return True
            if self._failed_attempt > started or not self.stats.is_flusher:
                return False
            left = deadline - time.monotonic()
            if left <= 0 or not self.running:
                return False
            await _wait(self._progress, min(left, self.config.poll_interval))
            self._hurry.set()

    def wake(self) -> None:
        """A record was queued (any thread): start lingering, or hurry for a full batch."""
        self._pending_wakes += 1  # racy by design: an estimate that only decides when to hurry
        loop = self._loop
        if loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._on_wake()
        elif not self._wake_scheduled:
            self._wake_scheduled = True
            try:
                loop.call_soon_threadsafe(self._on_wake)
            except RuntimeError:  # the loop is closed: the next start picks the records up
                self._wake_scheduled = False

    def _on_wake(self) -> None:
        self._wake_scheduled = False
        if not self._work.is_set():
            self._work.set()
        if self._pending_wakes >= self.config.max_batch_records and not self._hurry.is_set():
            self._hurry.set()

    async def __aenter__(self) -> AsyncFlusher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- the loop (flusher task) ----------------------------------------------------------

    async def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a spool operation: on the worker thread when offloading, else inline."""
        if self._executor is None:
            return fn(*args, **kwargs)
        loop = self._loop or asyncio.get_running_loop()
        # In the flusher's context: records made on the worker thread are marked as ours.
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def _offloaded(self, fn: Callable[[], _T]) -> asyncio.Future[_T]:
        """``ship_async``'s ``run_sync``: one plan step on the worker thread, in our context."""
        loop = self._loop or asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, contextvars.copy_context().run, fn)

    async def _run(self) -> None:
        last_checkpoint = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    if not await self._ensure_lock():
                        await _wait(self._stop, self.config.poll_interval)
                        continue
                    wait = self._resume_at - time.monotonic()
                    if wait > 0:
                        await self._pause(wait)
                        continue
                    leased = await self._lease_and_ship()
                except Exception:
                    await self._spool_failed()
                    continue
                now = time.monotonic()
                if now - last_checkpoint >= self.config.checkpoint_interval:
                    last_checkpoint = now
                    await self._checkpoint()
                if leased is None:  # nothing ready: sleep until woken or the poll interval
                    self._hurry.clear()
                    await _wait(self._work, self.config.poll_interval)
                    if self._work.is_set() and not self._stop.is_set():
                        await self._linger()
                    self._work.clear()
                elif leased < self.config.max_batch_records and not self._stop.is_set():
                    await self._linger()
            await self._drain()
        except asyncio.CancelledError:
            await self._cancel_inflight()
            raise
        except Exception as exc:  # pragma: no cover - a bug; never take the application down
            report_internal(
                "aio-flusher-crash",
                logging.ERROR,
                "yai-spool asyncio flusher crashed; records stay queued",
                exc=exc,
            )
        finally:
            self._lock_tried.set()
            await self._finish()

    async def _finish(self) -> None:
        with contextlib.suppress(Exception):
            await self._checkpoint()
        try:
            self.spool.release_flusher()
        except Exception:
            internal_log.debug("releasing the flusher lock failed", exc_info=True)
        self.stats.is_flusher = False
        if self._owns_sender:  # a sender handed in by the caller stays the caller's
            close = getattr(self._sender, "aclose", None) or getattr(self._sender, "close", None)
            try:
                result = close() if close is not None else None
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                internal_log.debug("closing the sender failed", exc_info=True)
            self._sender = None
        self._notify_progress()

    async def _ensure_lock(self) -> bool:
        if self.spool.is_flusher:
            return True
        try:
            self.stats.is_flusher = await self._call(self.spool.acquire_flusher)
        finally:
            self._lock_tried.set()
        return self.stats.is_flusher

    async def _lease_and_ship(self) -> int | None:
        """Take a slot, lease a batch, ship it in a task; None when nothing is ready."""
        await self._sem.acquire()
        try:
            self._pending_wakes = 0
            self._attempts += 1
            attempt = self._attempts
            batch = await self._call(
                self.spool.lease,
                self.config.max_batch_records,
                self.config.max_batch_bytes,
                lease_seconds=self.config.lease_seconds,
            )
        except BaseException:
            self._sem.release()
            raise
        if batch is None:
            self._sem.release()
            return None
        task = asyncio.get_running_loop().create_task(self._ship(batch, attempt))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return len(batch)

    async def _ship(self, batch: Batch, attempt: int) -> None:
        """Ship one batch (settling every record) and pace the loop by its outcome."""
        try:
            try:
                outcome = await self._ship_batch(batch)
            except asyncio.CancelledError:
                # stop() ran out of time: give the records back untouched (the ones already
                # settled by a bisection are not held by the lease any more and do not move).
                with contextlib.suppress(Exception):
                    self.spool.release(batch, count_attempt=False)
                raise
            except Exception as exc:
                # The spool failed while settling (disk full, read-only): release now or
                # when it can be written; the records must not wait for their lease to expire.
                report_internal(
                    "aio-settle", logging.WARNING, "yai-spool: settling a batch failed", exc=exc
                )
                with contextlib.suppress(Exception):
                    await self._call(self.spool.release, batch)
                outcome = Outcome.RETRY
        finally:
            self._sem.release()
        delay = self._backoff.next_delay(outcome, self._cycle.take_retry_after())
        self.stats.consecutive_failures = self._backoff.failures
        if outcome is not Outcome.DELIVERED:
            self._failed_attempt = max(self._failed_attempt, attempt)
            self._log_failure(outcome)
            if self._stopping:
                self._drain_failed = True
        if delay:
            self._resume_at = max(self._resume_at, time.monotonic() + delay)
        self._notify_progress()

    async def _ship_batch(self, batch: Batch) -> Outcome:
        """Ship one batch through the shared ``ShipCycle`` (settles every record).

        ``ship_async`` drives the cycle's sans-I/O plan: each PutLogs is awaited on the loop
        by the async client; with ``offload`` the plan's synchronous steps (encoding, the
        spool's ack/release/dead-letter) run on the flusher's worker thread.
        """
        return await ship_async(self._cycle, batch, self._sender, run_sync=self._run_sync)

    def _notify_progress(self) -> None:
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    async def _pause(self, delay: float) -> None:
        """Back off; stop() and flush() cut it short."""
        await _wait(self._retry_now, delay)
        self._retry_now.clear()
        if self._stop.is_set():
            self._retry_now.set()

    async def _linger(self) -> None:
        if self.config.linger > 0 and not self._hurry.is_set():
            await _wait(self._hurry, self.config.linger)

    async def _spool_failed(self) -> None:
        delay = self._backoff.next_delay(Outcome.RETRY)
        failures = self._backoff.failures
        self.stats.consecutive_failures = failures
        self.stats.last_outcome = "spool_error"
        self._failed_attempt = self._attempts
        self._notify_progress()
        report_internal(  # one line per minute at most, the traceback only at DEBUG
            f"aio-spool-error:{id(self)}",
            logging.WARNING,
            "yai-spool asyncio flusher: spool error, %d consecutive failures; retrying",
            failures,
            exc=sys.exc_info()[1],
        )
        await self._pause(max(delay, min(self.config.poll_interval, self.config.retry.cap)))

    async def _drain(self) -> None:
        """After stop(): ship until empty, the deadline, or a failed send; then cancel."""
        deadline = self._drain_deadline or time.monotonic()
        self._drain_failed = False
        try:
            if time.monotonic() < deadline and await self._ensure_lock():
                while time.monotonic() < deadline and not self._drain_failed:
                    try:
                        async with asyncio.timeout(max(deadline - time.monotonic(), 0)):
                            leased = await self._lease_and_ship()
                    except TimeoutError:
                        break
                    if leased is None:
                        break
            if self._inflight:
                await asyncio.wait(set(self._inflight), timeout=max(deadline - time.monotonic(), 0))
        except Exception:
            internal_log.debug("drain stopped by a spool error", exc_info=True)
        await self._cancel_inflight()

    async def _cancel_inflight(self) -> None:
        pending = [t for t in self._inflight if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _checkpoint(self) -> None:
        try:
            await self._call(self.spool.checkpoint)
        except Exception:
            internal_log.debug("WAL checkpoint failed", exc_info=True)

    def _log_failure(self, outcome: Outcome) -> None:
        failures = self._backoff.failures
        if failures and failures & (failures - 1) == 0:
            level = logging.ERROR if outcome is Outcome.CREDENTIALS else logging.WARNING
            internal_log.log(
                level,
                "yai-spool: PutLogs failed (%s, %s), %d consecutive failures; records kept",
                outcome.name.lower(),
                self.stats.last_error_code,
                failures,
            )


class _Link:
    """The flusher as a handler sees it: plain methods, safe from any thread.

    ``flush``/``stop`` called on the loop's own thread cannot wait for the loop (they would
    deadlock it): ``flush`` answers False and ``stop`` only asks the task to stop.
    """

    def __init__(self, flusher: AsyncFlusher) -> None:
        self._flusher = weakref.proxy(flusher)

    @property
    def stats(self) -> FlusherStats:
        return self._flusher.stats

    def wake(self) -> None:
        self._flusher.wake()

    def _foreign_loop(self) -> asyncio.AbstractEventLoop | None:
        """The flusher's loop if it runs and this is not its thread, else None."""
        flusher = self._flusher
        loop = flusher._loop
        if loop is None or loop.is_closed() or not flusher.running:
            return None
        if threading.get_ident() == flusher._loop_thread:
            return None
        return loop

    def flush(self, timeout: float) -> bool:
        loop = self._foreign_loop()
        if loop is None:
            return False
        future = asyncio.run_coroutine_threadsafe(self._flusher.flush(timeout), loop)
        try:
            return future.result(timeout + 1.0)
        except Exception:
            future.cancel()
            return False

    def stop(self, drain_timeout: float = 5.0) -> None:
        flusher = self._flusher
        loop = self._foreign_loop()
        if loop is None:
            if flusher.running and threading.get_ident() == flusher._loop_thread:
                # On the loop: cannot wait. Ask the task to stop; it drains on its own.
                flusher._loop.create_task(flusher.stop(drain_timeout))  # type: ignore[union-attr]
            return
        future = asyncio.run_coroutine_threadsafe(flusher.stop(drain_timeout), loop)
        with contextlib.suppress(Exception):
            future.result(drain_timeout + 3.0)


# --------------------------------------------------------------------------- lifespan


def _is_async_handler(obj: object) -> bool:
    return callable(getattr(obj, "attach_flusher", None)) and (
        isinstance(obj, AsyncSpoolHandler) or getattr(obj, "flusher_mode", None) == "asyncio"
    )


class _Lifespan(contextlib.AbstractAsyncContextManager[Any]):
    """Start flushers on enter, drain and stop them on exit (one application run)."""

    def __init__(
        self,
        app: Any,
        target: Any,
        *,
        config: Mapping[str, Any],
        logger: str | logging.Logger | None,
        drain_timeout: float | None,
        wrap: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] | None,
    ) -> None:
        self.app, self.target, self.config = app, target, config
        self.logger, self.drain_timeout, self.wrap = logger, drain_timeout, wrap
        self.flushers: list[AsyncFlusher] = []
        self.built: list[logging.Handler] = []
        self.inner: contextlib.AbstractAsyncContextManager[Any] | None = None

    def _handlers(self) -> list[Any]:
        target = self.target
        if self.config or isinstance(target, Mapping):
            options = {**(target or {}), **self.config}
            options.setdefault("mode", "asyncio")
            handler = make_handler(**options)
            if not _is_async_handler(handler):
                raise ValueError(f"mode {options['mode']!r} is not an asyncio mode")
            self.built.append(handler)
            return [handler]
        if target is None:
            return [h for h in list(asyncio_handlers) if not getattr(h, "_closed", False)]
        if isinstance(target, list | tuple):
            return list(target)
        return [target]

    async def __aenter__(self) -> Any:
        handlers = self._handlers()
        logger = None
        if self.built:
            logger = (
                self.logger
                if isinstance(self.logger, logging.Logger)
                else logging.getLogger(self.logger or None)
            )
            for handler in self.built:
                logger.addHandler(handler)
        self._logger = logger
        try:
            for handler in handlers:
                if not _is_async_handler(handler):
                    raise TypeError(
                        f"{handler!r} is not an asyncio handler; build it with "
                        "make_handler(mode='asyncio', ...)"
                    )
                flusher = AsyncFlusher(handler, drain_timeout=self.drain_timeout)
                await flusher.start()
                self.flushers.append(flusher)
            if self.wrap is not None:
                self.inner = self.wrap(self.app)
                return await self.inner.__aenter__()
        except BaseException:
            await self._shutdown()
            raise
        return None

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            if self.inner is not None:
                return await self.inner.__aexit__(*exc)
        finally:
            await self._shutdown()
        return None

    async def _shutdown(self) -> None:
        # The application's own shutdown (wrap) ran first: its last records ship too.
        flushers, self.flushers = self.flushers, []
        await asyncio.gather(*(f.stop(self.drain_timeout) for f in flushers))
        for handler in self.built:
            if self._logger is not None:
                self._logger.removeHandler(handler)
            handler.close()
        self.built = []


def lifespan(
    target: Any = None,
    /,
    *,
    logger: str | logging.Logger | None = None,
    drain_timeout: float | None = None,
    wrap: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    **config: Any,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]:
    """A lifespan for FastAPI / Starlette: start the asyncio flushers, drain them at shutdown.

    ``FastAPI(lifespan=yai_spool.handlers.aio.lifespan(handler))``. What it runs:

    - ``handler`` (or a list of them): asyncio handlers you attached to loggers yourself;
    - nothing: every live asyncio handler (e.g. built by ``logging.config.dictConfig`` with
      ``"()": "yai_spool.make_handler", "mode": "asyncio"``);
    - keyword arguments (or one mapping) of :func:`yai_spool.make_handler`: a handler built
      at startup (``mode`` defaults to ``"asyncio"``), attached to ``logger`` (the root logger
      by default) and removed and closed at shutdown.

    ``drain_timeout`` bounds the drain at shutdown (default: each handler's
    ``close_timeout``). ``wrap`` is your own lifespan (``app -> async context manager``): it
    runs inside ours, so records logged by your startup and shutdown ship too, and its
    state is what the lifespan yields.
    """

    def factory(app: Any = None) -> contextlib.AbstractAsyncContextManager[Any]:
        return _Lifespan(
            app, target, config=config, logger=logger, drain_timeout=drain_timeout, wrap=wrap
        )

    return factory


@contextlib.asynccontextmanager
async def running(
    target: Any = None,
    /,
    *,
    logger: str | logging.Logger | None = None,
    drain_timeout: float | None = None,
    **config: Any,
) -> AsyncIterator[list[AsyncFlusher]]:
    """``async with running(handler): ...`` for any asyncio program (same rules as
    :func:`lifespan`); yields the started flushers."""
    manager = _Lifespan(
        None, target, config=config, logger=logger, drain_timeout=drain_timeout, wrap=None
    )
    await manager.__aenter__()
    try:
        yield list(manager.flushers)
    finally:
        await manager.__aexit__(None, None, None)
