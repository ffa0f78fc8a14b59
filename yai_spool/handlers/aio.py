"""asyncio delivery (schemes 3 + 4 of the design note): a flusher task on a native async client.

Owns :class:`AsyncFlusher`, the asyncio driver of the shared shipping core, the durable
:class:`AsyncSpoolHandler`, and the start/stop plumbing: :func:`lifespan` for FastAPI /
Starlette (``FastAPI(lifespan=yai_spool.handlers.aio.lifespan(handler))``) and :func:`running` (or
``async with AsyncFlusher(handler)``) for any asyncio program.

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
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from yai_spool.handlers.core import (
    as_timeouts,
    asyncio_handlers,
    is_shipping_path,
)
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.shipping.aio import AsyncFlusher
from yai_spool.shipping.config import FlusherConfig

__all__ = [
    "AsyncFlusher",
    "AsyncSpoolHandler",
    "lifespan",
    "running",
]

internal_log = logging.getLogger("yai_spool.internal")

# --------------------------------------------------------------------------- durable handler


class AsyncSpoolHandler(SpoolHandler):
    """``SpoolHandler`` whose spool is drained by an :class:`AsyncFlusher` on your loop.

    Every record is committed to the durable spool before ``emit`` returns (as with
    ``SpoolHandler``: ``kill -9`` loses nothing); an asyncio task ships it. Takes the
    arguments of :class:`~yai_spool.handlers.durable.SpoolHandler` (``flusher`` is fixed) plus:

    Args:
        max_in_flight: PutLogs requests in flight at once (default 4).
        timeouts: per-request timeouts (``ClientTimeouts``, a mapping, or a total).
        async_sender_factory: builds the async client (tests); default ``AsyncPutLogsClient``.

    Start the flusher with :func:`lifespan` / :func:`running` / ``AsyncFlusher(handler)``.
    Records logged before it starts (or after it stops) stay in the spool and ship at the
    next start, from the daemon, or from a thread-flusher handler on the same spool.
    """

    mode_name = "spool"
    fixed_options = (
        "flusher",
    )  # always the asyncio task (yai_spool.handlers.configure reads this)

    def __init__(
        self,
        *,
        max_in_flight: int = 4,
        timeouts: Any = None,
        async_sender_factory: Callable[[], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "flusher" in kwargs:
            raise TypeError("AsyncSpoolHandler's flusher is always the asyncio task")
        if kwargs.get("endpoint") is None and async_sender_factory is None:
            raise ValueError("endpoint is required")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        self._link: Any = None
        super().__init__(flusher="none", **kwargs)
        self.flusher_mode_name = "asyncio"
        self.max_in_flight = max_in_flight
        self.client_options = dataclasses.replace(
            self._client_options, timeouts=None if timeouts is None else as_timeouts(timeouts)
        )
        if async_sender_factory is None:
            self.client_options.check()  # a bad endpoint fails here, not on the first send
        self._async_sender_factory = async_sender_factory or self.client_options.async_client
        asyncio_handlers.add(self)

    @property
    def flusher_config(self) -> FlusherConfig:
        return self._flusher_config

    def handle(self, record: logging.LogRecord) -> Any:
        if is_shipping_path(record):  # also the asyncio flusher task's own records
            return False
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        link = self._link
        if link is not None:
            link.wake()

    def flush_until(self, timeout: float) -> bool:
        """Wait for delivery of what was logged so far (False on the loop's own thread)."""
        link = self._link
        if self._closed or link is None:
            return False
        try:
            return bool(link.flush(timeout))
        except Exception:
            internal_log.debug("flush failed", exc_info=True)
            return False

    def close(self) -> None:
        """Stop the flusher (drain until ``close_timeout``), then close the spool."""
        link, self._link = self._link, None
        if link is not None and not self._closed:
            try:
                # logging.shutdown(): what is left of the deadline its flush() started.
                link.stop(self._bound.close_budget(self.close_timeout))
            except Exception:
                internal_log.debug("stopping the asyncio flusher failed", exc_info=True)
        super().close()

    def attach_flusher(self, link: Any) -> None:
        if self._link is not None and self._link is not link:
            raise RuntimeError(f"{self!r} already has a running flusher")
        self._link = link

    def detach_flusher(self, link: Any) -> None:
        if self._link is link:
            self._link = None

    def make_async_sender(self) -> Any:
        return self._async_sender_factory()

    def stats(self) -> dict[str, Any]:
        link = self._link
        return {
            "mode": "spool+asyncio",
            "spool": self.spool.stats(),
            "flusher": link.stats.snapshot() if link is not None else None,
        }

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<{type(self).__name__} {self.project}/{self.logstore} "
            f"spool={str(self.spool_path)!r} flusher=asyncio ({level})>"
        )

    def _after_fork_in_child(self) -> None:
        self._link = None  # the parent's loop and task do not exist here
        super()._after_fork_in_child()


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
            from yai_spool.handlers.configure import make_handler  # noqa: PLC0415 - import cycle

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
