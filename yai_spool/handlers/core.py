"""The shared core of every delivery mode: record routing, client options, drop reporting.

Owns the few pieces each handler of :mod:`yai_spool.handlers`, :mod:`yai_spool.handlers.aio` and the
configuration surface (:mod:`yai_spool.handlers.configure`) would otherwise each rewrite:

- :class:`Router`: ``LogRecord`` -> (spool entry, destination key), with the rules of
  ``SpoolHandler`` (``RecordMapper`` for the contents, the handler's topic/source/tags as
  defaults, ``extra={"sls_topic"/"sls_source"/"sls_tags": ...}`` overrides per record).
- :class:`ClientOptions`: endpoint, credentials, compression, signing and timeouts, and the
  one place that builds a :class:`~yai_spool.sls.client.PutLogsClient` or an
  :class:`~yai_spool.sls.client.AsyncPutLogsClient` from them (no retries in either: the one
  retry layer is :mod:`yai_spool.shipping.flusher` over :mod:`yai_spool.shipping.retry`).
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal

from yai_spool.handlers.mapping import EncodedRecord, RecordMapper
from yai_spool.shipping.marks import in_flusher_thread, shipping_task
from yai_spool.shipping.retry import DEFAULT_RETRY, RetryPolicy
from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import CredentialsProvider, resolve_credentials
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.request import Endpoint, region_from_host, validate_logstore, validate_project
from yai_spool.sls.signing import (
    DEFAULT_SIGNATURE_METHOD,
    SignatureMethod,
    validate_signature_method,
)
from yai_spool.spool.destination import encode_dest

if TYPE_CHECKING:
    from yai_spool.sls.client import AsyncPutLogsClient, ClientTimeouts, PutLogsClient

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

#: Field-selection options with the names and meaning of ``aliyun.log.QueuedLogHandler``,
#: passed unchanged to :class:`~yai_spool.handlers.mapping.RecordMapper` by every handler.
MAPPER_OPTIONS: Final = (
    "fields",
    "extra",
    "buildin_fields_prefix",
    "buildin_fields_suffix",
    "extract_json",
    "extract_json_drop_message",
    "extract_json_prefix",
    "extract_json_suffix",
    "extract_kv",
    "extract_kv_drop_message",
    "extract_kv_prefix",
    "extract_kv_suffix",
    "extract_kv_sep",
)

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
        project, logstore: the destination (validated: ``ConfigError`` names the rule).
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
    ) -> None:
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

    def split(
        self, record: logging.LogRecord, formatter: logging.Formatter | None
    ) -> tuple[EncodedRecord, tuple[str, str, tuple[tuple[str, str], ...]] | None]:
        """The encoded record and its (topic, source, tags), or None when they are the defaults."""
        encoded = self.mapper.encode(record, formatter)
        topic, source, tags = encoded.topic, encoded.source, encoded.tags
        if topic is None and source is None and tags is None:
            return encoded, None
        d_topic, d_source, d_tags = self.defaults
        return encoded, (
            d_topic if topic is None else topic,
            d_source if source is None else source,
            d_tags if tags is None else _merge_tags(d_tags, tags),
        )

    def route(
        self, record: logging.LogRecord, formatter: logging.Formatter | None
    ) -> tuple[EncodedRecord, str]:
        """The encoded record and the destination key the spool groups it by."""
        encoded, override = self.split(record, formatter)
        if override is None:
            return encoded, self.dest
        return encoded, encode_dest(self.project, self.logstore, *override)


def _merge_tags(
    defaults: Iterable[tuple[str, str]], overrides: Iterable[Iterable[str]]
) -> tuple[tuple[str, str], ...]:
    """``extra={"sls_tags": ...}`` merged over the handler's tags (mapping.py's contract)."""
    merged = dict(defaults)
    merged.update((str(k), str(v)) for k, v in overrides)  # type: ignore[misc]
    return tuple(sorted(merged.items()))


def as_timeouts(value: ClientTimeouts | Mapping[str, float] | float | None) -> ClientTimeouts:
    """``ClientTimeouts`` from a value, a mapping of its fields (TOML), or a total in seconds.

    A bare number is the whole call's deadline; connect/pool are capped at it too.
    """
    from yai_spool.sls.client import ClientTimeouts  # noqa: PLC0415 - httpx loads only to ship

    if value is None:
        return ClientTimeouts()
    if isinstance(value, ClientTimeouts):
        return value
    if isinstance(value, Mapping):
        return ClientTimeouts(**{k: float(v) for k, v in value.items()})
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"timeout must be seconds or ClientTimeouts, got {value!r}")
    total = float(value)
    return ClientTimeouts(
        connect=min(5.0, total), read=total, write=total, pool=min(5.0, total), total=total
    )


def as_retry(value: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
    """A ``RetryPolicy`` from itself or a mapping of its fields (dictConfig, TOML)."""
    if value is None:
        return DEFAULT_RETRY
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, Mapping):
        try:
            return RetryPolicy(**dict(value))
        except TypeError as exc:
            raise ConfigError(f"retry: {exc}") from None
    raise ConfigError(f"retry must be a RetryPolicy or a mapping, got {type(value).__name__}")


@dataclass(frozen=True)
class ClientOptions:
    """Everything a PutLogs client of any mode is built from (never a secret in the repr)."""

    endpoint: str | None
    credentials: CredentialsProvider = field(repr=False)
    compression: Compression = Compression.LZ4
    signature_version: Literal["v1", "v4"] = "v1"
    region: str | None = None
    timeouts: ClientTimeouts | None = None
    proxy: str | None = None
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD

    @classmethod
    def build(
        cls,
        endpoint: str | None,
        *,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        credentials_provider: CredentialsProvider | None = None,
        compression: Compression | str = Compression.LZ4,
        signature_version: Literal["v1", "v4"] = "v1",
        signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
        region: str | None = None,
        timeouts: Any = None,
        proxy: str | None = None,
    ) -> ClientOptions:
        """Validate constructor-style arguments (raises ``ConfigError``/``ValueError``)."""
        provider = resolve_credentials(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            provider=credentials_provider,
        )
        if signature_version not in ("v1", "v4"):
            raise ConfigError(f"signature_version must be 'v1' or 'v4', got {signature_version!r}")
        return cls(
            endpoint,
            provider,
            Compression(compression),
            signature_version,
            region,
            None if timeouts is None else as_timeouts(timeouts),
            proxy,
            signature_method=validate_signature_method(signature_method),
        )

    def check(self) -> None:
        """Validate what the client would refuse when built, without importing httpx.

        Lets a handler fail in its constructor (and ``dictConfig`` at startup) on a bad
        endpoint or a V4 signature without a region, while the client itself is built only
        on the first send (:class:`LazySender`).

        Raises:
            ConfigError: no endpoint, an endpoint that does not parse, V4 without a region.
        """
        if self.endpoint is None:
            raise ConfigError("endpoint is required to ship records")
        host = Endpoint.parse(self.endpoint).host
        if self.signature_version == "v4" and not (self.region or region_from_host(host)):
            raise ConfigError("signature_version='v4' needs region= (e.g. 'cn-hangzhou')")

    def _kwargs(self) -> dict[str, Any]:
        if self.endpoint is None:
            raise ConfigError("endpoint is required to ship records")
        kwargs: dict[str, Any] = {
            "credentials_provider": self.credentials,
            "compression": self.compression,
            "signature_version": self.signature_version,
            "signature_method": self.signature_method,
            "region": self.region,
            "proxy": self.proxy,
        }
        if self.timeouts is not None:
            kwargs["timeouts"] = self.timeouts
        return kwargs

    def sync_client(self) -> PutLogsClient:
        """A blocking client (thread flushers, the synchronous handler)."""
        from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415 - httpx loads only to ship

        return PutLogsClient(self.endpoint or "", **self._kwargs())

    def async_client(self) -> AsyncPutLogsClient:
        """A native asyncio client (the asyncio flusher): no thread pool for network I/O."""
        from yai_spool.sls.client import AsyncPutLogsClient  # noqa: PLC0415

        return AsyncPutLogsClient(self.endpoint or "", **self._kwargs())


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
