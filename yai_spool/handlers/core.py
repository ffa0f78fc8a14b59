"""The shared core of every delivery mode: record routing, client options, drop reporting.

Owns the few pieces each handler of :mod:`yai_spool.handlers`, :mod:`yai_spool.handlers.aio` and the
configuration surface (:mod:`yai_spool.handlers.configure`) would otherwise each rewrite:

- :class:`Router`: ``LogRecord`` -> (spool entry, destination key), with the rules of
  ``SpoolHandler`` (``RecordMapper`` for the contents, the handler's topic/source/tags as
  defaults, ``extra={"sls_topic"/"sls_source"/"sls_tags": ...}`` overrides per record).
- ``ClientOptions``, ``as_retry``, ``as_timeouts``, ``MAPPER_OPTIONS``: re-exported from
  :mod:`yai_spool.handlers.options`, which owns every handler option.
- :func:`is_shipping_path`: records logged by the shipping path itself (a flusher thread, the
  asyncio flusher task, our own ``yai_spool.*`` loggers) are never fed back into a queue.
- :class:`DropReporter`: a rate-limited warning for records a queue refused (already counted
  by reason in the queue's own counters).
- :class:`LazySender`: a sender that builds its client on the first send, on the sending
  thread, so httpx is imported by the shipping side and never by an application thread
  inside ``emit``.

Everything else is shared by reference, not copied: mapping (``mapping.RecordMapper``),
encoding (``encoding.encode_entries``), error classification (``errors.classify_exception``),
retry policy and backoff (``retry``), batching / bisection / dead letters
(``flusher.ShipCycle``), and queue counters (``SpoolStats``, ``FlusherStats``).

Invariants: nothing here does I/O; credentials live only inside a ``CredentialsProvider``
(whose repr masks them) and never appear in a repr, log line or exception text of ours.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from yai_spool.handlers.mapping import EncodedRecord, RecordMapper

# Re-exported: they lived here before the options module owned them (handlers.options).
from yai_spool.handlers.options import (
    MAPPER_OPTIONS,
    ClientOptions,
    HandlerOptions,
    as_retry,
    as_timeouts,
)
from yai_spool.shipping.marks import in_flusher_thread, shipping_task
from yai_spool.sls.request import validate_logstore, validate_project
from yai_spool.spool.destination import encode_dest

__all__ = [
    "MAPPER_OPTIONS",
    "ClientOptions",
    "DropReporter",
    "LazySender",
    "Router",
    "ShutdownBound",
    "as_retry",
    "as_timeouts",
    "asyncio_handlers",
    "called_by_logging_shutdown",
    "handle_unlocked",
    "is_shipping_path",
    "shipping_task",
]

internal_log = logging.getLogger("yai_spool.internal")

#: Live handlers whose queue an asyncio flusher drains (``flusher="asyncio"``):
#: ``yai_spool.handlers.aio.lifespan()`` without arguments starts a flusher for each of them.
asyncio_handlers: weakref.WeakSet[Any] = weakref.WeakSet()


def handle_unlocked(handler: logging.Handler, record: logging.LogRecord) -> Any:
    """``logging.Handler.handle`` without the handler lock around ``emit``.

    For handlers whose ``emit`` is thread-safe on its own (every yai-spool queue has its
    own locks): the stock lock would serialise every thread's emit, so no two records could
    ever be committed together (group commit) and each thread would queue behind the one
    inside SQLite. Filters apply as in ``Handler.handle``, including a filter that returns a
    replacement record (Python 3.12+).
    """
    rv = handler.filter(record)
    if isinstance(rv, logging.LogRecord):
        record = rv
    if rv:
        handler.emit(record)
    return rv


# logging.shutdown() calls flush() and then close() on every handler. Both drain the same
# spool toward the same SLS, so they share ONE bound, close_timeout: flush() called by
# shutdown notes the deadline and close() only uses what is left of it. Recognised by code
# object (a few frames up, for subclasses that wrap flush), because logging offers no hook.
_SHUTDOWN_CODE: Final = logging.shutdown.__code__
_SHUTDOWN_DEPTH: Final = 4


def called_by_logging_shutdown() -> bool:
    """True when ``logging.shutdown`` is among the few callers above the calling ``flush``."""
    try:
        frame = sys._getframe(2)  # 0: here, 1: flush(), 2: its caller
    except ValueError:  # pragma: no cover - a shallow stack
        return False
    for _ in range(_SHUTDOWN_DEPTH):
        if frame is None:
            return False
        if frame.f_code is _SHUTDOWN_CODE:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class ShutdownBound:
    """The one deadline ``flush()`` and ``close()`` share during ``logging.shutdown()``.

    ``flush_timeout(...)`` is the bound ``flush()`` should wait; ``close_budget(...)`` what is
    left for ``close()``: ``close_timeout`` from the start of a flush that ``logging.shutdown``
    called, else ``close_timeout`` from now. The handler passes its current timeouts in.
    """

    __slots__ = ("_deadline",)

    def __init__(self) -> None:
        self._deadline: float | None = None

    def flush_timeout(self, flush_timeout: float, close_timeout: float) -> float:
        """Call from ``flush()``: its bound (``close_timeout`` at most during shutdown)."""
        if not called_by_logging_shutdown():
            return flush_timeout
        self._deadline = time.monotonic() + close_timeout
        return min(flush_timeout, close_timeout)

    def close_budget(self, close_timeout: float) -> float:
        """Call from ``close()``: seconds left for the drain, never negative."""
        deadline, self._deadline = self._deadline, None
        if deadline is None:
            return close_timeout
        return max(0.0, min(close_timeout, deadline - time.monotonic()))


def is_shipping_path(record: logging.LogRecord) -> bool:
    """True for records that must not be queued (see the module docstring)."""
    return record.name.startswith("yai_spool") or in_flusher_thread() or shipping_task.get()


class Router:
    """``LogRecord`` -> ``(encoded record, dest)``: mapping and destination rules of every handler.

    Args:
        project, logstore: the destination (validated: ``ConfigError`` names the rule, unless
            ``check_names=False``).
        topic, source, tags: LogGroup defaults (``source`` defaults to the host name).
        mapper_options: keyword arguments of :class:`~yai_spool.handlers.mapping.RecordMapper`.
    """

    __slots__ = ("defaults", "dest", "logstore", "mapper", "project")

    def __init__(
        self,
        project: str,
        logstore: str,
        *,
        topic: str = "",
        source: str | None = None,
        tags: Mapping[str, str] | None = None,
        mapper_options: Mapping[str, Any] | None = None,
        check_names: bool = True,
    ) -> None:
        if check_names:
            validate_project(project)
            validate_logstore(logstore)
        self.project, self.logstore = project, logstore
        self.mapper = RecordMapper(**dict(mapper_options or {}))
        source = socket.gethostname() if source is None else source
        self.defaults: tuple[str, str, tuple[tuple[str, str], ...]] = (
            topic,
            source,
            tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items())),
        )
        self.dest = encode_dest(project, logstore, topic, source, self.defaults[2])

    @classmethod
    def of(cls, options: HandlerOptions, *, check_names: bool = True) -> Router:
        """The router of a handler's options (destination, LogGroup fields, field selection)."""
        return cls(
            options.project,
            options.logstore,
            topic=options.topic,
            source=options.source,
            tags=options.tags,
            mapper_options=options.mapper_options(),
            check_names=check_names,
        )

    def split(
        self, record: logging.LogRecord, formatter: logging.Formatter | None
    ) -> tuple[EncodedRecord, tuple[str, str, tuple[tuple[str, str], ...]] | None]:
        """The encoded record and its (topic, source, tags), or None when they are the defaults."""
        encoded = self.mapper.encode(record, formatter)
        if encoded.topic is None and encoded.source is None and encoded.tags is None:
            return encoded, None
        return encoded, self.override(encoded)

    def override(self, encoded: EncodedRecord) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """(topic, source, tags) of a record that overrides some of them (``extra=``)."""
        topic, source, tags = encoded.topic, encoded.source, encoded.tags
        d_topic, d_source, d_tags = self.defaults
        return (
            d_topic if topic is None else topic,
            d_source if source is None else source,
            d_tags if tags is None else _merge_tags(d_tags, tags),
        )

    def override_dest(self, encoded: EncodedRecord) -> str:
        """The destination key of a record that overrides topic, source or tags."""
        return encode_dest(self.project, self.logstore, *self.override(encoded))

    def route(
        self, record: logging.LogRecord, formatter: logging.Formatter | None
    ) -> tuple[EncodedRecord, str]:
        """The encoded record and the destination key the spool groups it by."""
        encoded = self.mapper.encode(record, formatter)
        if encoded.topic is None and encoded.source is None and encoded.tags is None:
            return encoded, self.dest
        return encoded, self.override_dest(encoded)


def _merge_tags(
    defaults: Iterable[tuple[str, str]], overrides: Iterable[Iterable[str]]
) -> tuple[tuple[str, str], ...]:
    """``extra={"sls_tags": ...}`` merged over the handler's tags (mapping's contract)."""
    merged = dict(defaults)
    merged.update((str(k), str(v)) for k, v in overrides)  # type: ignore[misc]
    return tuple(sorted(merged.items()))


class LazySender:
    """A ``Sender`` that builds the real one (``factory()``) on its first ``put_raw``.

    The flusher thread, or its per-request send thread, makes that first call: the HTTP
    client and httpx are imported there, never on an application thread inside ``emit``.
    Thread-safe: concurrent first sends build one client. ``close()`` closes it if it was
    built; a send after ``close()`` builds a new one (the flusher never does that).
    """

    __slots__ = ("_aborted", "_factory", "_lock", "_sender")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._sender: Any = None
        self._aborted = False
        self._lock = threading.Lock()

    @property
    def built(self) -> Any:
        """The real sender, or None before the first send."""
        return self._sender

    def put_raw(self, project: str, logstore: str, raw: bytes) -> Any:
        """Send through the real sender, building it first if needed."""
        sender = self._sender
        if sender is None:
            with self._lock:
                if self._sender is None:
                    self._sender = self._factory()
                    if self._aborted:  # abort() came first: the new client starts aborted
                        _abort_built(self._sender)
                sender = self._sender
        return sender.put_raw(project, logstore, raw)

    def abort(self) -> None:
        """Cancel the built client's calls in flight, from any thread (idempotent).

        An abort before the first send is kept: the client built afterwards starts aborted,
        so its calls fail at once (as the client's own calls after ``abort()`` do).
        """
        with self._lock:
            self._aborted = True
            sender = self._sender
        if sender is not None:
            _abort_built(sender)

    def close(self) -> None:
        """Close the real sender if one was built (idempotent)."""
        with self._lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()


def _abort_built(sender: Any) -> None:
    abort = getattr(sender, "abort", None)  # a custom sender_factory's sender may have none
    if abort is not None:
        abort()


class DropReporter:
    """Say on ``yai_spool.internal`` that records were refused: the 1st, 2nd, 4th, 8th..."""

    __slots__ = ("count", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def report(self, reason: str, detail: object) -> None:
        self.count += 1
        n = self.count
        if n & (n - 1) == 0:
            internal_log.warning(
                "yai-spool %s dropped a record (%s): %s; %d drops reported by this handler",
                self.name,
                reason,
                detail,
                n,
            )


# --------------------------------------------------------------------------- fork


_after_fork: weakref.WeakSet[Any] = weakref.WeakSet()
_fork_hook = False


def reset_after_fork(handler: Any) -> None:
    """Call ``handler._after_fork_in_child()`` in every forked child (weakly held)."""
    global _fork_hook  # noqa: PLW0603 - a once-per-process registration
    _after_fork.add(handler)
    if not _fork_hook and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_in_child)
        _fork_hook = True


def _in_child() -> None:
    for handler in list(_after_fork):
        try:
            handler._after_fork_in_child()
        except Exception:  # never break the child over logging
            internal_log.debug("after-fork reset failed", exc_info=True)
