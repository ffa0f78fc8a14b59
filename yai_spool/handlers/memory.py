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
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol

from yai_spool.handlers.core import (
    ClientOptions,
    DropReporter,
    LazySender,
    Router,
    ShutdownBound,
    as_retry,
    asyncio_handlers,
    handle_unlocked,
    is_shipping_path,
    reset_after_fork,
)
from yai_spool.shipping.flusher import FlusherConfig, Sender, ThreadFlusher
from yai_spool.shipping.retry import RetryPolicy
from yai_spool.sls.credentials import CredentialsProvider
from yai_spool.sls.signing import DEFAULT_SIGNATURE_METHOD, SignatureMethod
from yai_spool.spool import SpoolClosedError, SpoolDropped
from yai_spool.spool.memory import MemorySpool, MemorySpoolConfig

__all__ = ["FlusherLink", "MemoryQueueHandler"]

internal_log = logging.getLogger("yai_spool.internal")

QueueFlusher = Literal["thread", "asyncio"]


class FlusherLink(Protocol):
    """What a handler needs of the flusher draining its queue (thread or asyncio).

    ``ThreadFlusher`` is one; the asyncio flusher hands out one (``AsyncFlusher.link``)
    whose methods are safe to call from any thread.
    """

    def wake(self) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    def stop(self, drain_timeout: float = 5.0) -> None: ...


class MemoryQueueHandler(logging.Handler):
    """Queue records in memory (bounded) and ship them in batches from a flusher.

    Every argument is a keyword with a plain value, so ``logging.config.dictConfig`` can build
    it (``"class": "yai_spool.MemoryQueueHandler"``, or ``"()": "yai_spool.make_handler"``
    with ``mode: memory``).

    Args:
        project, logstore, endpoint: the destination.
        access_key_id, access_key_secret, security_token, credentials_provider: credentials
            (default: the ``ALIBABA_CLOUD_*`` environment variables, read per request).
        topic, source, tags: LogGroup fields (per-record ``extra={"sls_topic": ...}``).
        otel, otel_keys: OpenTelemetry span ids on every record, as ``SpoolHandler``.
        fields, extra, buildin_fields_prefix, ...: field selection as ``SpoolHandler``.
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
    """

    mode_name = "memory"
    # Class-level defaults so close() works on a handler whose __init__ raised after
    # logging.Handler.__init__ registered it for logging.shutdown().
    _closed = True
    _flusher: FlusherLink | None = None

    def __init__(
        self,
        *,
        project: str,
        logstore: str,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        credentials_provider: CredentialsProvider | None = None,
        topic: str = "",
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        fields: Iterable[Any] | None = None,
        extra: bool | None = True,
        buildin_fields_prefix: str | None = None,
        buildin_fields_suffix: str | None = None,
        extract_json: bool | None = None,
        extract_json_drop_message: bool | None = None,
        extract_json_prefix: str | None = None,
        extract_json_suffix: str | None = None,
        extract_kv: bool | None = None,
        extract_kv_drop_message: bool | None = None,
        extract_kv_prefix: str | None = None,
        extract_kv_suffix: str | None = None,
        extract_kv_sep: str | None = None,
        otel: bool = True,
        otel_keys: Mapping[str, str | None] | None = None,
        flusher: QueueFlusher = "thread",
        max_queue_records: int = 100_000,
        max_queue_bytes: int = 64 * 1024 * 1024,
        when_full: str = "drop_oldest",
        block_timeout: float = 1.0,
        max_dead_letters: int = 1000,
        batch_size: int = 4096,
        batch_bytes: int = 4 * 1024 * 1024,
        linger: float = 0.5,
        retry: RetryPolicy | Mapping[str, Any] | None = None,
        timeouts: Any = None,
        max_in_flight: int = 4,
        compression: str = "lz4",
        signature_version: Literal["v1", "v4"] = "v1",
        signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
        region: str | None = None,
        proxy: str | None = None,
        flush_timeout: float = 5.0,
        close_timeout: float = 5.0,
        sender_factory: Callable[[], Sender] | None = None,
        async_sender_factory: Callable[[], Any] | None = None,
        level: int | str = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        if flusher not in ("thread", "asyncio"):
            raise ValueError(f"flusher must be 'thread' or 'asyncio', got {flusher!r}")
        if endpoint is None and sender_factory is None and async_sender_factory is None:
            raise ValueError("endpoint is required")
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
        self.project, self.logstore, self.endpoint = project, logstore, endpoint
        self.flusher_mode: QueueFlusher = flusher
        self.flush_timeout, self.close_timeout = flush_timeout, close_timeout
        self._bound = ShutdownBound()  # logging.shutdown(): flush + close share close_timeout
        self.max_in_flight = max_in_flight
        self._router = Router(
            project,
            logstore,
            topic=topic,
            source=source,
            tags=tags,
            mapper_options={
                "fields": fields,
                "extra": extra,
                "buildin_fields_prefix": buildin_fields_prefix,
                "buildin_fields_suffix": buildin_fields_suffix,
                "extract_json": extract_json,
                "extract_json_drop_message": extract_json_drop_message,
                "extract_json_prefix": extract_json_prefix,
                "extract_json_suffix": extract_json_suffix,
                "extract_kv": extract_kv,
                "extract_kv_drop_message": extract_kv_drop_message,
                "extract_kv_prefix": extract_kv_prefix,
                "extract_kv_suffix": extract_kv_suffix,
                "extract_kv_sep": extract_kv_sep,
                "otel": otel,
                "otel_keys": otel_keys,
            },
        )
        self.client_options = ClientOptions.build(
            endpoint,
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            credentials_provider=credentials_provider,
            compression=compression,
            signature_version=signature_version,
            signature_method=signature_method,
            region=region,
            timeouts=timeouts,
            proxy=proxy,
        )
        self.flusher_config = FlusherConfig(
            max_batch_records=batch_size,
            max_batch_bytes=batch_bytes,
            linger=linger,
            retry=as_retry(retry),
        )
        self.spool = MemorySpool(
            MemorySpoolConfig(
                max_records=max_queue_records,
                max_bytes=max_queue_bytes,
                when_full=when_full,  # type: ignore[arg-type]  # validated by the config
                block_timeout=block_timeout,
                max_dead_letters=max_dead_letters,
            ),
            name=f"{project}/{logstore}",
        )
        own = sender_factory if flusher == "thread" else async_sender_factory
        if own is None:
            self.client_options.check()  # a bad endpoint fails here, not on the first send
        self._sender_factory = sender_factory  # None: our client, built on the first send
        self._async_sender_factory = async_sender_factory or self.client_options.async_client
        self._flusher = None
        self._thread_flusher: ThreadFlusher | None = None
        self._closed = False
        self._start_error = False
        self._start_lock = threading.Lock()
        self._reporter = DropReporter(f"{project}/{logstore} memory queue")
        reset_after_fork(self)
        if flusher == "asyncio":
            asyncio_handlers.add(self)

    # -- logging.Handler -----------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        # Before Handler.handle takes the handler lock (see SpoolHandler.handle: shutdown
        # holds it while flushing, and the flusher thread must never wait for it).
        if is_shipping_path(record):
            return False
        return handle_unlocked(self, record)  # the queue has its own lock

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
            if self.flusher_mode != "thread" or self._closed or self._start_error:
                return  # asyncio: the task picks it up when it starts
            try:
                flusher = self._start_thread()
            except Exception:
                self._start_error = True
                self.handleError(record)
                return
            if flusher is None:
                return
        flusher.wake()

    def flush(self) -> None:
        """Wait (at most ``flush_timeout``) until records emitted so far are delivered.

        Called by ``logging.shutdown()``, it waits at most ``close_timeout`` and the
        ``close()`` that follows gets only what is left of that deadline.
        """
        self.flush_until(self._bound.flush_timeout(self.flush_timeout, self.close_timeout))

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
                flusher = self._start_thread()
            if flusher is None:
                return self.spool.pending_through(self.spool.high_water()) == 0
            return flusher.flush(timeout)
        except Exception:
            internal_log.debug("flush failed", exc_info=True)
            return False

    def close(self) -> None:
        """Drain until ``close_timeout``, stop the flusher; what is left is lost and counted."""
        if self._closed:
            super().close()
            return
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            flusher, self._flusher = self._flusher, None
        try:
            if flusher is not None:
                flusher.stop(self._bound.close_budget(self.close_timeout))
            lost = self.spool.close()
            if lost:
                internal_log.warning(
                    "yai-spool %s/%s: %d records were still queued in memory at close "
                    "and are lost (counted as unsent_at_close)",
                    self.project,
                    self.logstore,
                    lost,
                )
        except Exception:
            internal_log.debug("close failed", exc_info=True)
        finally:
            super().close()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<{type(self).__name__} {self.project}/{self.logstore} "
            f"flusher={self.flusher_mode} ({level})>"
        )

    # -- the flusher link (the asyncio flusher attaches itself here) ----------------------

    def attach_flusher(self, link: FlusherLink) -> None:
        """Route wake-ups, ``flush()`` and ``close()`` to ``link`` (an asyncio flusher)."""
        with self._start_lock:
            if self._flusher is not None and self._flusher is not link:
                raise RuntimeError(f"{self!r} already has a running flusher")
            self._flusher = link

    def detach_flusher(self, link: FlusherLink) -> None:
        with self._start_lock:
            if self._flusher is link:
                self._flusher = None

    def make_async_sender(self) -> Any:
        """The asyncio client the asyncio flusher ships with."""
        return self._async_sender_factory()

    # -- observability -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The queue's counters (``SpoolStats`` shape) plus the flusher's."""
        flusher = self._flusher
        flusher_stats = getattr(flusher, "stats", None)
        return {
            "mode": f"{self.mode_name}+{self.flusher_mode}",
            "spool": self.spool.stats(),
            "flusher": flusher_stats.snapshot() if flusher_stats is not None else None,
        }

    # -- internals -----------------------------------------------------------------------

    def _start_thread(self) -> FlusherLink | None:
        with self._start_lock:
            if self._flusher is None and not self._closed:
                flusher = ThreadFlusher(
                    self.spool,  # type: ignore[arg-type]  # MemorySpool: the Spool API subset
                    self._sender_factory()
                    if self._sender_factory is not None
                    else LazySender(self.client_options.sync_client),
                    self.flusher_config,
                    name=f"yai-spool-memory-flusher[{self.project}/{self.logstore}]",
                )
                flusher.start()
                self._flusher = self._thread_flusher = flusher
            return self._flusher

    def _after_fork_in_child(self) -> None:
        self._flusher = self._thread_flusher = None
        self._start_lock = threading.Lock()
        self.spool.reopen_after_fork()
