"""``SpoolHandler``: a ``logging.Handler`` whose ``emit`` puts the record on disk, then returns.

Owns the logging side of yai-spool: mapping a record (``mapping.RecordMapper``), one spool
append (``spool.Spool.append``), and the lifecycle of the in-process flusher thread.

Invariants:
- ``emit`` does no network I/O and never raises into the application. A record is either
  committed to the spool before ``emit`` returns (so it survives ``kill -9``), or dropped
  and counted by reason in the spool's counters (``yai-spool status`` shows them). Only a
  failure we did not foresee goes through ``handleError``, as ``logging`` expects.
- No thread starts in ``__init__``: the flusher starts on the first ``emit`` or ``flush()``
  (so a handler built before ``fork()`` never leaves a dead thread in the child, and records
  left by an earlier run ship on ``flush()`` even before anything new is logged). After a
  fork the child reopens SQLite and starts its own flusher thread on its first record; that
  thread ships only if it can take the spool's flusher lock, otherwise it stands by. The
  spool's locks are held across ``fork()``, so no thread is inside SQLite at that instant
  (a child inheriting SQLite's allocator mutex locked deadlocks on its first record).
- ``flush()`` waits, bounded by ``flush_timeout``, for records emitted before it; it never
  stops the flusher (the official handler's ``flush()`` does, aliyun-log-python-sdk #203).
- ``close()`` is idempotent: it drains until ``close_timeout`` and leaves the rest on disk
  for the next start or the daemon. ``flush()`` after ``close()`` returns at once.
- ``logging.shutdown()`` (flush, then close) returns within ``close_timeout`` plus
  ``flusher.ABANDON_GRACE``, whatever the network does: the flush it calls waits at most
  ``close_timeout`` and close only gets what is left of that same deadline
  (``modes.core.ShutdownBound``). At the deadline the requests in flight are cancelled; their
  records stay leased and are shipped by the next flusher (at least once).
- After ``close()`` returns no thread of the handler runs (flusher, request threads, the
  spool's housekeeper), and none touches the spool again. (Only a custom ``sender_factory``
  whose client has no ``abort()`` can leave a request thread behind; it never touches the
  spool.)
- Records logged by the shipping path itself (the flusher thread: httpx/httpcore debug
  logs) and by ``yai_spool.*`` loggers are not spooled: they would feed back into the
  spool forever (watchtower #93, #115). They still reach the application's other handlers.
  They are dropped in ``handle()``, before the handler lock: ``logging.shutdown()`` holds
  that lock while it flushes, and the flusher thread must not wait for it.
- Credentials are never stored on the handler in clear in a repr, never in the spool.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from yai_spool.handlers.core import ClientOptions, LazySender, ShutdownBound, handle_unlocked
from yai_spool.handlers.mapping import RecordMapper
from yai_spool.shipping.flusher import FlusherConfig, Sender, ThreadFlusher, in_flusher_thread
from yai_spool.shipping.retry import DEFAULT_RETRY, RetryPolicy
from yai_spool.sls.credentials import CredentialsProvider
from yai_spool.sls.signing import DEFAULT_SIGNATURE_METHOD, SignatureMethod
from yai_spool.spool import Spool, SpoolConfig, SpoolDropped
from yai_spool.spool.destination import encode_dest

__all__ = ["SpoolHandler", "default_spool_path"]

internal_log = logging.getLogger("yai_spool.internal")

FlusherMode = Literal["thread", "none"]


def default_spool_path(project: str, logstore: str) -> Path:
    """``$XDG_STATE_HOME/yai-spool/<project>.<logstore>.spool`` (``~/.local/state`` default)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state) / "yai-spool" / f"{project}.{logstore}.spool"


class SpoolHandler(logging.Handler):
    """Ship log records to SLS through a durable on-disk spool.

    Every argument is a keyword with a plain value, so ``logging.config.dictConfig`` can
    build it (``"class": "yai_spool.SpoolHandler"``).

    Args:
        project, logstore: the SLS destination.
        endpoint: SLS endpoint, e.g. ``cn-hangzhou.log.aliyuncs.com`` or
            ``https://cn-hangzhou.log.aliyuncs.com``; required unless ``flusher="none"``.
        spool_path: the spool file (default :func:`default_spool_path`). Many processes may
            share one; exactly one of them ships it at a time.
        access_key_id, access_key_secret, security_token: static credentials; or
        credentials_provider: an object with ``get_credentials()`` (STS refresh). With none
            of them the standard ``ALIBABA_CLOUD_ACCESS_KEY_ID`` /
            ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` / ``ALIBABA_CLOUD_SECURITY_TOKEN`` environment
            variables are read when the flusher sends.
        topic, source, tags: LogGroup fields (``source`` defaults to the host name);
            ``extra={"sls_topic": ..., "sls_source": ..., "sls_tags": {...}}`` overrides them
            per record.
        flusher: ``"thread"`` (default) ships from a background thread of this process;
            ``"none"`` only spools, for services drained by ``yai-spool run``.
        fields, extra, buildin_fields_prefix, buildin_fields_suffix, extract_json,
        extract_json_drop_message, extract_json_prefix, extract_json_suffix, extract_kv,
        extract_kv_drop_message, extract_kv_prefix, extract_kv_suffix, extract_kv_sep: field
            selection with the names and meaning of ``aliyun.log.QueuedLogHandler``.
        otel, otel_keys: add the active OpenTelemetry span's ``trace_id``, ``span_id`` and
            ``trace_flags`` to every record (default on; costs nothing without OTel), under
            these keys (e.g. ``{"trace_id": "traceId"}``; None omits a field). A span's ids
            win over a ``trace_id`` bound with ``yai_spool.handlers.context.bind``; see
            :mod:`yai_spool.handlers.otel`.
        max_spool_records, max_spool_bytes, when_full, block_timeout, synchronous: spool
            bounds and durability (see ``yai_spool.spool``); ``synchronous="FULL"`` also
            survives power loss at a higher cost per record.
        batch_size, batch_bytes, linger: batching of PutLogs requests.
        max_in_flight: PutLogs requests in flight at once (the next batch is leased and
            sent while earlier ones wait for SLS).
        compression: ``lz4`` (default), ``zstd``, ``deflate`` or ``none``.
        signature_version, region: ``v1`` (default) or ``v4`` signing.
        signature_method: V1's HMAC, ``"hmac-sha1"`` (default) or ``"hmac-sha256"``
            (validated here, at construction; ignored by V4).
        retry: a :class:`~yai_spool.shipping.retry.RetryPolicy` (backoff caps, ``max_age``).
        flush_timeout: the bound of ``flush()``; close_timeout: the drain bound of ``close()``.
        sender_factory: builds the PutLogs client (tests, the SDK adapter); default
            :class:`~yai_spool.sls.client.PutLogsClient`, which is built on the first send, on
            the flusher's thread (never in ``__init__`` or ``emit``). A factory given here
            is called when the flusher starts (first ``emit`` or ``flush()``); if it
            raises, that is reported once (``handleError``) and the records stay spooled.

    Raises:
        ConfigError: the endpoint, signing or credential arguments are invalid (checked
            without building the client).
        ValueError: another argument is out of range.
        level: the handler level.
    """

    def __init__(
        self,
        *,
        project: str,
        logstore: str,
        endpoint: str | None = None,
        spool_path: str | os.PathLike[str] | None = None,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        credentials_provider: CredentialsProvider | None = None,
        topic: str = "",
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        flusher: FlusherMode = "thread",
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
        max_spool_records: int = 1_000_000,
        max_spool_bytes: int = 256 * 1024 * 1024,
        when_full: str = "drop_oldest",
        block_timeout: float = 1.0,
        synchronous: str = "NORMAL",
        batch_size: int = 4096,
        batch_bytes: int = 4 * 1024 * 1024,
        linger: float = 0.5,
        max_in_flight: int = 2,
        compression: str = "lz4",
        signature_version: Literal["v1", "v4"] = "v1",
        signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
        region: str | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        flush_timeout: float = 5.0,
        close_timeout: float = 5.0,
        sender_factory: Callable[[], Sender] | None = None,
        level: int | str = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        # Closed until the constructor completes: logging.shutdown() still reaches a handler
        # whose constructor raised (Handler.__init__ registered it), and it owns nothing.
        self._closed = True
        self._start_lock = threading.Lock()
        if flusher not in ("thread", "none"):
            raise ValueError(f"flusher must be 'thread' or 'none', got {flusher!r}")
        if flusher == "thread" and endpoint is None and sender_factory is None:
            raise ValueError("endpoint is required unless flusher='none'")
        self.project, self.logstore, self.endpoint = project, logstore, endpoint
        self.flusher_mode: FlusherMode = flusher
        self.flush_timeout, self.close_timeout = flush_timeout, close_timeout
        self._bound = ShutdownBound()
        source = socket.gethostname() if source is None else source
        self._mapper = RecordMapper(
            fields=fields,
            extra=extra,
            buildin_fields_prefix=buildin_fields_prefix,
            buildin_fields_suffix=buildin_fields_suffix,
            extract_json=extract_json,
            extract_json_drop_message=extract_json_drop_message,
            extract_json_prefix=extract_json_prefix,
            extract_json_suffix=extract_json_suffix,
            extract_kv=extract_kv,
            extract_kv_drop_message=extract_kv_drop_message,
            extract_kv_prefix=extract_kv_prefix,
            extract_kv_suffix=extract_kv_suffix,
            extract_kv_sep=extract_kv_sep,
            otel=otel,
            otel_keys=otel_keys,
        )
        self._defaults = (topic, source, tuple(sorted((tags or {}).items())))
        self._dest = encode_dest(project, logstore, topic, source, self._defaults[2])
        self.spool_path = Path(spool_path) if spool_path else default_spool_path(project, logstore)
        self._spool_config = SpoolConfig(
            max_records=max_spool_records,
            max_bytes=max_spool_bytes,
            when_full=when_full,  # type: ignore[arg-type]  # validated by SpoolConfig
            block_timeout=block_timeout,
            synchronous=synchronous,  # type: ignore[arg-type]
        )
        self._flusher_config = FlusherConfig(
            max_batch_records=batch_size,
            max_batch_bytes=batch_bytes,
            linger=linger,
            max_in_flight=max_in_flight,
            retry=retry,
        )
        # Validated here (ConfigError on a bad endpoint, V4 without region, half a key pair)
        # without importing httpx; the client itself is built on the first send.
        self._client_options = ClientOptions.build(
            endpoint,
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            credentials_provider=credentials_provider,
            compression=compression,
            signature_version=signature_version,
            signature_method=signature_method,
            region=region,
        )
        if flusher == "thread" and sender_factory is None:
            self._client_options.check()
        self._sender_factory = sender_factory
        self.spool = Spool(self.spool_path, self._spool_config)
        self._flusher: ThreadFlusher | None = None
        self._start_error = False
        self._drops_reported = 0
        _register_fork_handler(self)
        self._closed = False

    # -- logging.Handler -----------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        # Drop the shipping path's own records *before* Handler.handle takes the handler
        # lock: logging.shutdown() holds that lock while it calls flush() and close(), and a
        # flusher thread blocked on it (httpx debug logs) could not deliver anything then.
        if in_flusher_thread() or record.name.startswith("yai_spool"):
            return False
        # No handler lock around emit: concurrent emits commit together (group commit).
        return handle_unlocked(self, record)

    def emit(self, record: logging.LogRecord) -> None:
        # The shipping path's own records were dropped by handle() (logging calls it).
        try:
            # A full drop_newest spool refuses this record whatever it holds: count it before
            # paying for the mapping (a refusal must not cost more than an acceptance).
            self.spool.refuse_if_full()
            encoded = self._mapper.encode(record, self.formatter)
            if encoded.topic is None and encoded.source is None and encoded.tags is None:
                dest = self._dest
            else:
                dest = encode_dest(
                    self.project,
                    self.logstore,
                    self._defaults[0] if encoded.topic is None else encoded.topic,
                    self._defaults[1] if encoded.source is None else encoded.source,
                    self._defaults[2]
                    if encoded.tags is None
                    else _merge_tags(self._defaults[2], encoded.tags),
                )
            d = record.__dict__
            level, logger = d.get("levelname"), d.get("name")
            self.spool.append_log(
                encoded.data,
                dest=dest,
                log_time=encoded.time,
                level=level if type(level) is str else None,
                logger=logger if type(logger) is str else None,
            )
        except SpoolDropped as exc:
            # Already counted by reason in the spool; say so on our own logger, rate-limited.
            self._report_drop(exc)
            return
        except Exception:
            self.handleError(record)
            return
        flusher = self._flusher
        if flusher is None:
            if self.flusher_mode == "none" or self._closed or self._start_error:
                return
            try:
                flusher = self._start_flusher()
            except Exception:
                # The record is on disk; a sender we cannot even build (bad endpoint) is a
                # configuration error: say it once, never raise into the application.
                self._start_error = True
                self.handleError(record)
                return
            if flusher is None:  # closed meanwhile
                return
        flusher.wake()

    def flush(self) -> None:
        """Wait (at most ``flush_timeout``) until records emitted so far are delivered.

        Called by ``logging.shutdown()``, it waits at most ``close_timeout`` and the
        ``close()`` that follows gets only what is left of that deadline.
        """
        if self._closed:
            return
        self.flush_until(self._bound.flush_timeout(self.flush_timeout, self.close_timeout))

    def flush_until(self, timeout: float) -> bool:
        """Like :meth:`flush`, with an explicit bound; True if everything was delivered."""
        if self._closed or self.flusher_mode != "thread":
            return False  # logging.shutdown() flushes closed handlers too: never raise
        try:
            # No emit yet in this process: start the flusher anyway, so records left in the
            # spool by an earlier run (an outage at exit, a crash) ship on flush().
            flusher = self._flusher or self._start_flusher()
            if flusher is None:
                return False
            return flusher.flush(timeout)
        except Exception:
            internal_log.debug("flush failed", exc_info=True)
            return False

    def close(self) -> None:
        """Drain until ``close_timeout``, stop the flusher, close the spool (idempotent).

        At the deadline the requests still in flight are cancelled; their records stay leased
        in the spool for the next flusher. When this returns, no thread of the handler runs.
        """
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            flusher, self._flusher = self._flusher, None
        try:
            if flusher is not None:
                flusher.stop(self._bound.close_budget(self.close_timeout))
            self.spool.close()
        except Exception:
            internal_log.debug("close failed", exc_info=True)
        finally:
            super().close()

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<{type(self).__name__} {self.project}/{self.logstore} spool={str(self.spool_path)!r} "
            f"flusher={self.flusher_mode} ({level})>"
        )

    # -- observability -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The spool's durable counters plus this process's flusher counters."""
        snapshot = self.spool.stats()
        flusher = self._flusher
        return {
            "spool": snapshot,
            "flusher": flusher.stats.snapshot() if flusher is not None else None,
        }

    # -- internals -----------------------------------------------------------------------

    def _make_sender(self) -> Sender:
        if self._sender_factory is not None:
            return self._sender_factory()  # the caller's own (tests, the SDK adapter)
        # Our client is built on the first send, on the flusher's thread: httpx loads only
        # in processes that ship, and never inside emit() on an application thread.
        return LazySender(self._client_options.sync_client)

    def _start_flusher(self) -> ThreadFlusher | None:
        with self._start_lock:
            if self._flusher is None and not self._closed:
                flusher = ThreadFlusher(
                    self.spool,
                    self._make_sender(),
                    self._flusher_config,
                    name=f"yai-spool-flusher[{self.project}/{self.logstore}]",
                )
                flusher.start()
                self._flusher = flusher
            return self._flusher

    def _report_drop(self, exc: SpoolDropped) -> None:
        self._drops_reported += 1
        n = self._drops_reported
        if n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th, ... drop: visible, never a flood
            internal_log.warning(
                "yai-spool dropped a record (%s): %s; %d drops reported by this handler",
                getattr(exc, "reason", type(exc).__name__),
                exc,
                n,
            )

    def _after_fork_in_child(self) -> None:
        # The parent's flusher thread does not exist here; the child's starts on first emit.
        self._flusher = None
        self._start_lock = threading.Lock()
        self._drops_reported = 0
        self.spool.reopen_after_fork()


def _merge_tags(
    defaults: Iterable[tuple[str, str]], overrides: Iterable[Iterable[str]]
) -> list[tuple[str, str]]:
    """``extra={"sls_tags": ...}`` merged over the handler's tags (mapping.py's contract)."""
    merged = dict(defaults)
    merged.update((k, v) for k, v in overrides)
    return list(merged.items())


_handlers: weakref.WeakSet[SpoolHandler] = weakref.WeakSet()
_fork_hook_installed = False

# fork() while another thread of this process is inside SQLite deadlocks the child: SQLite's
# allocator takes a process-global mutex (SQLITE_MUTEX_STATIC_MEM), the child inherits it
# locked, and its first SQLite call (reopen_after_fork) waits forever. Every SQLite call of
# a Spool runs under its ``_lock`` (main connection) or ``_ckpt_lock`` (checkpoints), so we
# hold both across fork(): then no thread of ours is inside SQLite at that instant. Bounded:
# a lock that stays busy (a long busy_timeout wait) is skipped after _FORK_LOCK_WAIT.
_FORK_LOCK_WAIT = 10.0
_fork_held: list[Any] = []


def _register_fork_handler(handler: SpoolHandler) -> None:
    """One process-wide at-fork hook over a weak set: handlers can still be collected."""
    global _fork_hook_installed  # noqa: PLW0603 - a once-per-process registration
    _handlers.add(handler)
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork,
            after_in_parent=_after_fork_in_parent,
            after_in_child=_after_fork_in_child,
        )
        _fork_hook_installed = True


def _spool_fork_locks(spool: Spool) -> list[Any]:
    if getattr(type(spool), "GUARDS_FORK", False):
        return []  # the spool holds its own locks across fork() (requests.md)
    return [
        lock for lock in (getattr(spool, name, None) for name in ("_lock", "_ckpt_lock")) if lock
    ]


def _before_fork() -> None:
    for handler in list(_handlers):
        for lock in _spool_fork_locks(handler.spool):
            try:
                if lock.acquire(timeout=_FORK_LOCK_WAIT):
                    _fork_held.append(lock)
            except Exception:  # never break fork() over logging
                internal_log.debug("before-fork lock failed", exc_info=True)


def _after_fork_in_parent() -> None:
    while _fork_held:
        _fork_held.pop().release()


def _after_fork_in_child() -> None:
    _fork_held.clear()  # the child's spools get fresh locks in reopen_after_fork()
    for handler in list(_handlers):
        try:
            handler._after_fork_in_child()
        except Exception:  # never break the child over logging; the spool reopens lazily
            internal_log.debug("after-fork reset failed", exc_info=True)
