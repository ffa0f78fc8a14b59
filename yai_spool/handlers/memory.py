"""``MemoryQueueHandler``: schemes 1 + 2 of the design note, on the shared batching flusher.

Owns the in-memory queue mode: ``emit`` maps the record (on the caller's thread, so the
request context is the caller's) and puts it on a bounded
:class:`~yai_spool.spool.memory.MemorySpool`; a flusher ships it in batches. The flusher is
the project's one flusher, unchanged: ``ThreadFlusher`` (``flusher="thread"``, the
QueueHandler/QueueListener shape) or the asyncio flusher of :mod:`yai_spool.handlers.aio`
(``flusher="asyncio"``), both over ``ShipCycle``: batches by
count, bytes and linger, one retry policy, bisection of rejected batches, dead letters, a
drain at exit.

What it guarantees, and what not (the reason to choose the durable ``SpoolHandler`` instead):

- ``emit`` never does network I/O and never raises. With ``when_full="block"`` it may wait up
  to ``block_timeout`` for room; otherwise it never waits.
- **Records live in memory only.** A crash, ``kill -9``, an OOM kill or a power cut loses
  every record not yet delivered, silently (nothing survives to count it). A clean exit
  (``logging.shutdown`` / ``close()``) drains for up to ``close_timeout``; whatever is still
  queued after that (an SLS outage at exit) is lost and counted as ``unsent_at_close`` in
  ``stats()["spool"].dropped``, and one warning says how many.
- The queue is bounded (``max_queue_records`` / ``max_queue_bytes``); when it is full,
  ``when_full`` decides (``drop_oldest``, ``drop_newest``, ``block``) and every refused record
  is counted under one reason. Memory use is therefore bounded during an outage.
- Records of ``yai_spool.*`` loggers and of the shipping path itself are never queued.
- After ``fork()`` the child starts with an empty queue and its own flusher thread (started
  by its first record); the parent ships what it had queued.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from yai_spool.handlers.base import AsyncDrained, FlusherLink  # FlusherLink lived here
from yai_spool.handlers.core import DropReporter, Router, reset_after_fork
from yai_spool.handlers.options import QueueFlusher, QueueOptions
from yai_spool.spool import SpoolClosedError, SpoolDropped
from yai_spool.spool.memory import MemorySpool, MemorySpoolConfig

__all__ = ["FlusherLink", "MemoryOptions", "MemoryQueueHandler"]

internal_log = logging.getLogger("yai_spool.internal")


@dataclass(frozen=True, kw_only=True)
class MemoryOptions(QueueOptions):
    """``MemoryQueueHandler``: a bounded in-memory queue, a thread or asyncio flusher."""

    flusher: QueueFlusher = "thread"
    max_queue_records: int = 100_000
    max_queue_bytes: int = 64 * 1024 * 1024
    max_dead_letters: int = 1000
    timeouts: Any = None
    proxy: str | None = None
    async_sender_factory: Callable[[], Any] | None = None

    queue_config: MemorySpoolConfig = field(init=False, repr=False, compare=False)

    def _check(self) -> None:
        if self.flusher not in ("thread", "asyncio"):
            raise ValueError(f"flusher must be 'thread' or 'asyncio', got {self.flusher!r}")
        if (
            self.endpoint is None
            and self.sender_factory is None
            and self.async_sender_factory is None
        ):
            raise ValueError("endpoint is required")
        self._check_in_flight()

    def _client_extras(self) -> dict[str, Any]:
        return {"timeouts": self.timeouts, "proxy": self.proxy}

    def _derive(self) -> None:
        super()._derive()
        object.__setattr__(
            self,
            "queue_config",
            MemorySpoolConfig(
                max_records=self.max_queue_records,
                max_bytes=self.max_queue_bytes,
                when_full=self.when_full,  # type: ignore[arg-type]  # validated by the config
                block_timeout=self.block_timeout,
                max_dead_letters=self.max_dead_letters,
            ),
        )

    def uses_own_client(self) -> bool:
        own = self.sender_factory if self.flusher == "thread" else self.async_sender_factory
        return own is None


class MemoryQueueHandler(AsyncDrained):
    """Queue records in memory (bounded) and ship them in batches from a flusher.

    Every argument is a keyword with a plain value, so ``logging.config.dictConfig`` can build
    it (``"class": "yai_spool.MemoryQueueHandler"``, or ``"()": "yai_spool.make_handler"``
    with ``mode: memory``).

    Args:
        project, logstore, endpoint, credentials, topic, source, tags, otel, field selection:
            as ``SpoolHandler`` (every mode takes them).
        flusher: ``"thread"`` (default: a background thread, started by the first record) or
            ``"asyncio"`` (an asyncio task started by :func:`yai_spool.handlers.aio.lifespan` or
            ``async with yai_spool.handlers.aio.AsyncFlusher(handler)``).
        max_queue_records, max_queue_bytes: the bound of the queue.
        when_full: ``"drop_oldest"`` (default), ``"drop_newest"`` or ``"block"``.
        block_timeout: seconds ``emit`` may wait for room with ``"block"``.
        max_dead_letters: records SLS refused, kept in memory for inspection (oldest go).
        batch_size, batch_bytes, linger: batching of PutLogs requests.
        retry: the backoff (``RetryPolicy`` or a mapping of its fields).
        timeouts: per-request timeouts (``ClientTimeouts``, a mapping, or a total in seconds).
        max_in_flight: PutLogs requests in flight at once (asyncio flusher only).
        compression, signature_version, signature_method, region, proxy: client options
            (``signature_method``: V1's HMAC, ``"hmac-sha1"`` default or ``"hmac-sha256"``).
        flush_timeout: bound of ``flush()``; close_timeout: drain bound of ``close()``.
        sender_factory: builds the blocking client (tests); default ``PutLogsClient``.
        async_sender_factory: builds the asyncio client; default ``AsyncPutLogsClient``.
        level: the handler level.

    The keywords, their defaults and checks are
    :class:`MemoryOptions`.
    """

    mode_name = "memory"
    flusher_thread_name = "yai-spool-memory-flusher"
    options_class = MemoryOptions
    options: MemoryOptions
    spool: MemorySpool

    def _configure(self, options: MemoryOptions) -> None:
        super()._configure(options)
        self._router = Router.of(options)
        self.spool = MemorySpool(options.queue_config, name=f"{self.project}/{self.logstore}")
        self._reporter = DropReporter(f"{self.project}/{self.logstore} memory queue")
        reset_after_fork(self)

    # -- logging.Handler (handle: AsyncDrained's, without the handler lock) --------------

    def emit(self, record: logging.LogRecord) -> None:
        try:
            encoded, dest = self._router.route(record, self.formatter)
            self.spool.append_log(encoded.data, dest=dest)
        except SpoolDropped as exc:
            self._reporter.report(exc.reason, exc)  # already counted in the queue
            return
        except SpoolClosedError:
            return  # after close(): counted as "closed"
        except Exception:
            self.handleError(record)
            return
        flusher = self._flusher
        if flusher is None:
            flusher = self._first_flusher(record)  # asyncio: the task picks it up at its start
            if flusher is None:
                return
        flusher.wake()

    def flush_until(self, timeout: float) -> bool:
        """Like :meth:`flush` with an explicit bound; True if everything was delivered.

        With the asyncio flusher, called on the event loop's own thread, this cannot wait
        (it would block the loop the flusher runs on) and returns False at once: use
        ``await flusher.flush()`` there.
        """
        if self._closed:
            return False
        try:
            flusher = self._flusher
            if flusher is None and self.flusher_mode == "thread":
                flusher = self._start_flusher()
            if flusher is None:
                return self.spool.pending_through(self.spool.high_water()) == 0
            return flusher.flush(timeout)
        except Exception:
            internal_log.debug("flush failed", exc_info=True)
            return False

    def _close_queue(self) -> None:
        """Close the queue: what is still in it is lost now, counted and said once."""
        lost = self.spool.close()
        if lost:
            internal_log.warning(
                "yai-spool %s/%s: %d records were still queued in memory at close "
                "and are lost (counted as unsent_at_close)",
                self.project,
                self.logstore,
                lost,
            )

    # -- observability -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The queue's counters (``SpoolStats`` shape) plus the flusher's."""
        return {
            "mode": f"{self.mode_name}+{self.flusher_mode}",
            "spool": self.spool.stats(),
            "flusher": self._flusher_stats(),
        }
