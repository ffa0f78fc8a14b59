"""``AsyncSpoolHandler``: the durable ``SpoolHandler``, drained by an asyncio task on your loop.

Owns the handler side of durable asyncio delivery: ``emit`` commits each record to the spool
exactly as ``SpoolHandler`` does (``kill -9`` loses nothing) and wakes the flusher attached
to it (an :class:`~yai_spool.handlers.aio.AsyncFlusher`, through its thread-safe link).

Invariants:

- No asyncio here and no flusher of its own: ``flusher`` is fixed (the thread flusher never
  starts); records logged while no asyncio flusher is attached stay in the spool and ship at
  its next start, from the daemon, or from a thread-flusher handler on the same spool.
- One flusher at a time: :meth:`attach_flusher` refuses a second one.
- ``close()`` stops the attached flusher within what is left of ``close_timeout`` (shared
  with ``flush()`` during ``logging.shutdown()``), then closes the spool.
"""

from __future__ import annotations

import logging
from typing import Any

from yai_spool.handlers.core import asyncio_handlers, is_shipping_path
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.handlers.options import AsyncSpoolOptions
from yai_spool.shipping.flusher import FlusherConfig

__all__ = ["AsyncSpoolHandler"]

internal_log = logging.getLogger("yai_spool.internal")


class AsyncSpoolHandler(SpoolHandler):
    """``SpoolHandler`` whose spool is drained by an ``AsyncFlusher`` on your loop.

    Every record is committed to the durable spool before ``emit`` returns (as with
    ``SpoolHandler``: ``kill -9`` loses nothing); an asyncio task ships it. Takes the
    arguments of :class:`~yai_spool.handlers.durable.SpoolHandler` (``flusher`` is fixed) plus:

    Args:
        max_in_flight: PutLogs requests in flight at once (default 4).
        timeouts: per-request timeouts (``ClientTimeouts``, a mapping, or a total).
        async_sender_factory: builds the async client (tests); default ``AsyncPutLogsClient``.

    Start the flusher with :func:`yai_spool.handlers.aio.lifespan` /
    :func:`yai_spool.handlers.aio.running` / ``AsyncFlusher(handler)``. The keywords are
    :class:`~yai_spool.handlers.options.AsyncSpoolOptions`.
    """

    mode_name = "spool"
    options_class = AsyncSpoolOptions
    options: AsyncSpoolOptions

    # options_class is AsyncSpoolOptions: what ConfiguredHandler hands in here.
    def _configure(self, options: AsyncSpoolOptions) -> None:  # type: ignore[override]
        self._link: Any = None
        super()._configure(options)
        self.flusher_mode_name = "asyncio"
        self.max_in_flight = options.max_in_flight
        self.client_options = options.client
        self._async_sender_factory = options.async_sender_factory or options.client.async_client
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
