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
  (``handlers.core.ShutdownBound``). At the deadline the requests in flight are cancelled; their
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
import weakref
from pathlib import Path
from typing import Any, ClassVar

from yai_spool.handlers.base import QueuedHandler
from yai_spool.handlers.core import Router, handle_unlocked
from yai_spool.handlers.options import FlusherMode, HandlerOptions, SpoolOptions  # noqa: F401 - FlusherMode lived here
from yai_spool.shipping.marks import in_flusher_thread
from yai_spool.spool import Spool, SpoolDropped

__all__ = ["SpoolHandler", "default_spool_path"]

internal_log = logging.getLogger("yai_spool.internal")


def default_spool_path(project: str, logstore: str) -> Path:
    """``$XDG_STATE_HOME/yai-spool/<project>.<logstore>.spool`` (``~/.local/state`` default)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(state) / "yai-spool" / f"{project}.{logstore}.spool"


class SpoolHandler(QueuedHandler):
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
        level: the handler level (a number, or a level name in any case).

    The keywords, their defaults and checks are :class:`~yai_spool.handlers.options.SpoolOptions`;
    ``SpoolHandler(options)`` takes a built one.

    Raises:
        ConfigError: the endpoint, signing or credential arguments are invalid (checked
            without building the client).
        ValueError: another argument is out of range.
        TypeError: an unknown keyword (named, with a did-you-mean).
    """

    options_class: ClassVar[type[HandlerOptions]] = SpoolOptions
    options: SpoolOptions
    spool: Spool

    def _configure(self, options: SpoolOptions) -> None:
        super()._configure(options)
        # SpoolHandler has never checked the names: the spool takes any, the sender decides.
        self._router = router = Router.of(options, check_names=False)
        self._mapper, self._defaults, self._dest = router.mapper, router.defaults, router.dest
        self.spool_path = (
            Path(options.spool_path)
            if options.spool_path
            else default_spool_path(options.project, options.logstore)
        )
        self._spool_config = options.spool_config
        self.spool = Spool(self.spool_path, self._spool_config)
        self._drops_reported = 0
        _register_fork_handler(self)

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
            # Router.route, inlined for the common case (the hot path): no per-record override.
            if encoded.topic is None and encoded.source is None and encoded.tags is None:
                dest = self._dest
            else:
                dest = self._router.override_dest(encoded)
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
        flusher = self._flusher  # the thread flusher, or an attached asyncio one's link
        if flusher is None:
            flusher = self._first_flusher(record)  # the record is on disk either way
            if flusher is None:
                return
        flusher.wake()

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

    def _close_queue(self) -> None:
        """Close the spool: what was not delivered stays on disk for the next flusher (the
        records of requests cancelled at the deadline stay leased). When ``close()``
        returns, no thread of the handler runs."""
        self.spool.close()

    def _repr_fields(self) -> str:
        return f"spool={str(self.spool_path)!r} flusher={self.flusher_mode}"

    # -- observability -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The spool's durable counters plus this process's flusher counters."""
        return {"spool": self.spool.stats(), "flusher": self._flusher_stats()}

    # -- internals -----------------------------------------------------------------------

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
        self._drops_reported = 0
        super()._after_fork_in_child()


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
