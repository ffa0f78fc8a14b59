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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yai_spool.handlers.base import AsyncDrained
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.handlers.options import FlusherMode, SpoolOptions

__all__ = ["AsyncSpoolHandler", "AsyncSpoolOptions"]

internal_log = logging.getLogger("yai_spool.internal")


@dataclass(frozen=True, kw_only=True)
class AsyncSpoolOptions(SpoolOptions):
    """``AsyncSpoolHandler``: the durable spool drained by an asyncio task on your loop."""

    # Not a keyword here: SpoolOptions.from_keywords says why when one is given.
    flusher: FlusherMode = field(
        default="none", init=False, metadata={"fixed": "always the asyncio task"}
    )
    max_in_flight: int = 4
    timeouts: Any = None
    async_sender_factory: Callable[[], Any] | None = None

    def _check(self) -> None:
        if self.endpoint is None and self.async_sender_factory is None:
            raise ValueError("endpoint is required")
        self._check_in_flight()

    def _client_extras(self) -> dict[str, Any]:
        return {"timeouts": self.timeouts}

    def _flusher_extras(self) -> dict[str, Any]:
        # The asyncio flusher bounds its requests itself (max_in_flight); the thread
        # flusher's own bound keeps its default, as it always did for this handler.
        return {}

    def uses_own_client(self) -> bool:
        return self.async_sender_factory is None


class AsyncSpoolHandler(AsyncDrained, SpoolHandler):
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
    :class:`AsyncSpoolOptions`.

    ``emit`` is ``SpoolHandler``'s: it wakes whichever flusher is in ``_flusher``, here the
    attached asyncio flusher's link; ``close()`` is ``QueuedHandler``'s (stop it, then close
    the spool).
    """

    mode_name = "spool"
    options_class = AsyncSpoolOptions
    options: AsyncSpoolOptions

    # options_class is AsyncSpoolOptions: what ConfiguredHandler hands in here.
    def _configure(self, options: AsyncSpoolOptions) -> None:  # type: ignore[override]
        super()._configure(options)
        self.flusher_mode_name = "asyncio"

    def flush_until(self, timeout: float) -> bool:
        """Wait for delivery of what was logged so far (False on the loop's own thread)."""
        link = self._flusher
        if self._closed or link is None:
            return False
        try:
            return bool(link.flush(timeout))
        except Exception:
            internal_log.debug("flush failed", exc_info=True)
            return False

    def stats(self) -> dict[str, Any]:
        return {
            "mode": "spool+asyncio",
            "spool": self.spool.stats(),
            "flusher": self._flusher_stats(),
        }

    def _repr_fields(self) -> str:
        return f"spool={str(self.spool_path)!r} flusher=asyncio"
