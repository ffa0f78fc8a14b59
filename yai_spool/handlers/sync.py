"""``SyncSLSHandler``: each record is one PutLogs call, made before ``emit`` returns.

Owns the synchronous mode: what the official ``SimpleLogHandler`` does, minus its failure
modes. It is the right choice only for low-volume programs that want a record in SLS before
the logging call returns (a CLI tool, a cron job, an audit line) and accept that the caller
waits for the network.

Invariants:

- ``emit`` makes at most one HTTP exchange, bounded by ``ClientTimeouts.total`` (``timeout``,
  3 s by default): no retries, never the SDK's 10 x 1 s loop.
- ``emit`` never raises. A failure is classified once (``errors.classify_exception``) and
  counted by outcome in :meth:`stats`, and goes to ``handleError`` (rate-limited: the 1st,
  2nd, 4th, 8th... failure) as ``logging`` expects.
- During an outage the caller does not pay a timeout per record: after a failure the handler
  backs off with the shared :class:`~yai_spool.shipping.retry.RetryPolicy` (full jitter), and
  records logged inside that window are dropped at once and counted as ``backoff`` (pass
  ``skip_while_backing_off=False`` to try every record instead). Nothing is queued: a record
  that could not be sent is lost and counted, never kept.
- Records logged while a record is being sent (httpx debug logs on the same thread) and
  records of ``yai_spool.*`` loggers are not sent (they would recurse).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from yai_spool.handlers.base import ConfiguredHandler
from yai_spool.handlers.core import Router, is_shipping_path
from yai_spool.handlers.options import HandlerOptions
from yai_spool.shipping.cycle import Sender
from yai_spool.shipping.retry import Backoff
from yai_spool.sls.encoding import join_logs
from yai_spool.sls.errors import Outcome, SLSError, classify_exception

__all__ = ["SyncOptions", "SyncSLSHandler"]

internal_log = logging.getLogger("yai_spool.internal")


@dataclass(frozen=True, kw_only=True)
class SyncOptions(HandlerOptions):
    """``SyncSLSHandler``: one PutLogs call per record, a bounded timeout, a backoff."""

    timeout: Any = 3.0
    skip_while_backing_off: bool = True
    proxy: str | None = None
    rng: random.Random | None = None

    def _client_extras(self) -> dict[str, Any]:
        return {"timeouts": self.timeout, "proxy": self.proxy}


class SyncSLSHandler(ConfiguredHandler):
    """Send every record to SLS inside ``emit``, with a bounded timeout and no retries.

    Args:
        project, logstore, endpoint, credentials, topic, source, tags, otel, field selection:
            as ``SpoolHandler`` (every mode takes them).
        timeout: seconds one record may take at most (or a ``ClientTimeouts``). Default 3.
        retry: the backoff after a failure (``RetryPolicy`` or a mapping of its fields).
        skip_while_backing_off: drop (and count) records during the backoff instead of
            making the caller wait for a link that just failed. Default True.
        compression, signature_version, signature_method, region, proxy: client options
            (``signature_method``: V1's HMAC, ``"hmac-sha1"`` default or ``"hmac-sha256"``).
        sender_factory: builds the client (tests); default ``PutLogsClient``.
        rng: the backoff's jitter source (tests); default a fresh ``random.Random``.
        level: the handler level.

    The keywords, their defaults and checks are :class:`SyncOptions`.
    """

    options_class = SyncOptions
    options: SyncOptions

    def _configure(self, options: SyncOptions) -> None:
        self._router = Router.of(options)
        self._options = options.client
        if options.sender_factory is None:
            # emit() sends, so it needs the client: import it here, never inside emit().
            import yai_spool.sls.client  # noqa: F401, PLC0415
        self._sender_factory = options.sender_factory or options.client.sync_client
        self._sender: Sender | None = None
        self._backoff = Backoff(options.retry, options.rng or random.Random())
        self._skip = options.skip_while_backing_off
        self._resume_at = 0.0
        self._local = threading.local()
        self._counts: Counter[str] = Counter()
        self._failures = 0
        self._last_error_code = ""
        self._last_request_id = ""

    # -- logging.Handler -----------------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        # Records made while this thread sends (httpx debug logs) would recurse into emit.
        if getattr(self._local, "sending", False) or is_shipping_path(record):
            return False
        return super().handle(record)

    def emit(self, record: logging.LogRecord) -> None:
        """Send the record now; on failure count it, report it, and return."""
        if self._closed:
            self._counts["dropped_closed"] += 1
            return
        if self._skip and self._resume_at and time.monotonic() < self._resume_at:
            self._counts["dropped_backoff"] += 1
            return
        try:
            encoded, override = self._router.split(record, self.formatter)
            topic, source, tags = self._router.defaults if override is None else override
            raw = join_logs(encoded.data, topic, source, tags)
            sender = self._sender or self._open()
        except Exception:
            self._counts["failed_local"] += 1
            self.handleError(record)
            return
        self._local.sending = True
        try:
            result = sender.put_raw(self.project, self.logstore, raw)
        except Exception as exc:
            self._failed(record, exc)
        else:
            self._counts["delivered"] += 1
            self._last_request_id = getattr(result, "request_id", "") or ""
            if self._backoff.failures:
                self._backoff.next_delay(Outcome.DELIVERED)
                self._resume_at = 0.0
        finally:
            self._local.sending = False

    def _open(self) -> Sender:
        self._sender = self._sender_factory()
        return self._sender

    def _failed(self, record: logging.LogRecord, exc: Exception) -> None:
        outcome = classify_exception(exc)
        self._counts[f"failed_{outcome.name.lower()}"] += 1
        self._last_error_code = exc.error_code if isinstance(exc, SLSError) else type(exc).__name__
        if outcome is not Outcome.REJECTED:  # a refused record says nothing about the link
            delay = self._backoff.next_delay(outcome)
            self._resume_at = time.monotonic() + delay
        self._failures += 1
        failures = self._failures
        if failures & (failures - 1) == 0:  # 1st, 2nd, 4th, ...: visible, never a flood
            self.handleError(record)

    def flush(self) -> None:
        """Nothing is buffered: every record was sent (or dropped) in ``emit``."""

    def close(self) -> None:
        """Close the HTTP client (idempotent)."""
        self.acquire()
        try:
            if self._closed:
                return
            self._closed = True
            sender, self._sender = self._sender, None
        finally:
            self.release()
        try:
            if sender is not None:
                sender.close()
        except Exception:
            internal_log.debug("closing the client failed", exc_info=True)
        finally:
            super().close()

    # -- observability -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``delivered``, ``failed`` by outcome, ``dropped`` by reason, the last error code."""
        counts = dict(self._counts)
        return {
            "mode": "sync",
            "delivered": counts.get("delivered", 0),
            "failed": {
                k.removeprefix("failed_"): v for k, v in counts.items() if k.startswith("failed_")
            },
            "dropped": {
                k.removeprefix("dropped_"): v for k, v in counts.items() if k.startswith("dropped_")
            },
            "consecutive_failures": self._backoff.failures,
            "last_error_code": self._last_error_code,
            "last_request_id": self._last_request_id,
        }

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.project}/{self.logstore} ({level})>"
