"""Optional Prometheus endpoint of the daemon (``metrics_port``; extra ``yai-spool[metrics]``).

Owns the metric names and labels. Every value is read at scrape time from the same snapshots
the STATUS line uses (``Daemon.snapshots``), through a custom collector on a private registry,
so nothing is double-counted and a scrape never sees a half-updated set.

Labels: ``spool`` (file path), ``endpoint``, ``project`` and ``logstore`` (the configured
override, ``*`` where the spool rows decide), plus ``state``/``reason`` where noted.

Metrics (``yai_spool_`` prefix):

- ``records{state=ready|leased|dead}``, ``bytes{state=...}``, ``file_bytes`` (db + WAL),
  ``oldest_ready_age_seconds``                                               gauges
- ``appended_records_total``, ``delivered_records_total``, ``retried_records_total``,
  ``retry_requests_total``, ``throttled_requests_total`` (requests, not records),
  ``dead_lettered_records_total``, ``dropped_records_total{reason}``
  (the spool's durable counters: they include deliveries by in-process flushers)  counters
- ``last_success_timestamp_seconds``, ``flusher_pid`` (holder, 0 = none), ``flusher_held``
  (1 when this daemon holds the lock), ``spool_readable``                   gauges
- ``daemon_spools``, ``daemon_delivered_records_total``, ``daemon_reloads_total{result}``,
  ``daemon_flusher_restarts_total``                                         process-wide

Invariants: binds 127.0.0.1 only (no authentication on it); labels never carry secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from yai_spool.daemon.status import DaemonTotals, SpoolSnapshot
from yai_spool.errors import ConfigError

__all__ = ["MetricsServer", "start_metrics"]

_LABELS = ["spool", "endpoint", "project", "logstore"]


def _labels(snap: SpoolSnapshot) -> list[str]:
    t = snap.target
    return [str(t.path), t.endpoint, t.project or "*", t.logstore or "*"]


class _Collector:
    def __init__(
        self,
        snapshots: Callable[[], Sequence[SpoolSnapshot]],
        totals: Callable[[], DaemonTotals],
    ) -> None:
        self._snapshots = snapshots
        self._totals = totals

    def describe(self) -> list[Any]:
        return []  # unchecked collector: the label sets change with discovery

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (  # noqa: PLC0415 - optional extra
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        snaps = list(self._snapshots())
        g = GaugeMetricFamily
        c = CounterMetricFamily
        records = g(
            "yai_spool_records", "Records in the spool by state", labels=[*_LABELS, "state"]
        )
        nbytes = g("yai_spool_bytes", "Encoded record bytes by state", labels=[*_LABELS, "state"])
        file_bytes = g("yai_spool_file_bytes", "Database plus WAL file size", labels=_LABELS)
        oldest = g(
            "yai_spool_oldest_ready_age_seconds", "Age of the oldest READY record", labels=_LABELS
        )
        readable = g("yai_spool_spool_readable", "1 if the last stats read worked", labels=_LABELS)
        holder_pid = g(
            "yai_spool_flusher_pid", "Pid holding the flusher lock (0 = none)", labels=_LABELS
        )
        held = g(
            "yai_spool_flusher_held", "1 if this daemon is the spool's flusher", labels=_LABELS
        )
        last_ok = g(
            "yai_spool_last_success_timestamp_seconds",
            "Unix time of the last delivery",
            labels=_LABELS,
        )
        counters = {
            name: c(f"yai_spool_{metric}", text, labels=_LABELS)
            for name, metric, text in (
                ("appended", "appended_records", "Records appended (all processes)"),
                ("delivered", "delivered_records", "Records acknowledged by SLS"),
                ("retried", "retried_records", "Records given back for a retry"),
                ("retry_requests", "retry_requests", "PutLogs requests that failed, retried"),
                ("throttled_requests", "throttled_requests", "PutLogs quota answers"),
                ("dead_lettered", "dead_lettered_records", "Records moved to the dead letters"),
            )
        }
        dropped = c(
            "yai_spool_dropped_records",
            "Records dropped before reaching the spool",
            labels=[*_LABELS, "reason"],
        )
        for snap in snaps:
            labels = _labels(snap)
            held.add_metric(labels, 1.0 if snap.holder else 0.0)
            stats = snap.stats
            readable.add_metric(labels, 0.0 if stats is None else 1.0)
            if stats is None:
                continue
            for state, n, b in (
                ("ready", stats.ready_records, stats.ready_bytes),
                ("leased", stats.leased_records, stats.leased_bytes),
                ("dead", stats.dead_records, stats.dead_bytes),
            ):
                records.add_metric([*labels, state], n)
                nbytes.add_metric([*labels, state], b)
            file_bytes.add_metric(labels, stats.file_bytes + stats.wal_bytes)
            oldest.add_metric(labels, stats.oldest_ready_age or 0.0)
            holder_pid.add_metric(labels, stats.flusher_pid or 0)
            if stats.last_success_at is not None:
                last_ok.add_metric(labels, stats.last_success_at)
            for name, family in counters.items():
                family.add_metric(labels, getattr(stats, name))
            for reason, n in sorted(stats.dropped.items()):
                dropped.add_metric([*labels, reason], n)
        yield from (records, nbytes, file_bytes, oldest, readable, holder_pid, held, last_ok)
        yield from counters.values()
        yield dropped
        totals = self._totals()
        yield g("yai_spool_daemon_spools", "Spools this daemon manages", value=len(snaps))
        yield c(
            "yai_spool_daemon_delivered_records",
            "Records this daemon delivered",
            value=totals.delivered,
        )
        yield c(
            "yai_spool_daemon_flusher_restarts",
            "Flusher threads restarted after a crash",
            value=totals.flusher_restarts,
        )
        reloads = c("yai_spool_daemon_reloads", "Configuration reloads", labels=["result"])
        reloads.add_metric(["ok"], totals.reloads)
        reloads.add_metric(["failed"], totals.reload_failures)
        yield reloads


class MetricsServer:
    """A running HTTP exporter; ``close()`` stops it."""

    def __init__(self, server: Any, thread: threading.Thread, port: int) -> None:
        self._server = server
        self._thread = thread
        self.port = port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


def start_metrics(
    port: int,
    snapshots: Callable[[], Sequence[SpoolSnapshot]],
    totals: Callable[[], DaemonTotals],
) -> MetricsServer:
    """Serve ``/metrics`` on 127.0.0.1:``port``.

    Raises:
        ConfigError: prometheus-client is not installed (names the extra to install).
        OSError: the port cannot be bound.
    """
    try:
        from prometheus_client import start_http_server  # noqa: PLC0415 - optional extra
        from prometheus_client.registry import CollectorRegistry  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "metrics_port: prometheus-client is not installed; pip install 'yai-spool[metrics]' "
            "or remove metrics_port"
        ) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snapshots, totals))  # type: ignore[arg-type]
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    return MetricsServer(server, thread, port)
