"""Optional Prometheus endpoint of the daemon (``metrics_port``; extra ``yai-spool[metrics]``).

Owns the daemon's exporter: one custom collector on a private registry that reads, at
scrape time, the same snapshots the STATUS line uses (``Daemon.snapshots``), so nothing is
double-counted and a scrape never sees a half-updated set. The per-spool metric names live
in :mod:`yai_spool.ops.metrics` (shared with applications' own registries); the process-wide
ones are here:

- ``yai_spool_daemon_spools``                        gauge: spools this daemon manages
- ``yai_spool_daemon_requests_total``                PutLogs requests this daemon sent
- ``yai_spool_daemon_delivered_records_total``       records this daemon delivered
- ``yai_spool_daemon_reloads_total{result=ok|failed}``  configuration reloads
- ``yai_spool_daemon_flusher_restarts_total``        flusher threads restarted after a crash

Per-spool labels: ``spool`` (file path), ``endpoint``, ``project`` and ``logstore`` (the
configured override, ``*`` where the spool rows decide).

Invariants: binds 127.0.0.1 only (no authentication on it); labels never carry secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from yai_spool.daemon.status import DaemonTotals, SpoolSnapshot
from yai_spool.ops.metrics import SpoolSample, spool_families
from yai_spool.sls.errors import ConfigError

__all__ = ["MetricsServer", "start_metrics"]


def _sample(snap: SpoolSnapshot) -> SpoolSample:
    t = snap.target
    labels = (str(t.path), t.endpoint, t.project or "*", t.logstore or "*")
    return SpoolSample(labels, snap.stats, snap.flusher, snap.holder)


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
        yield from spool_families(map(_sample, snaps))
        totals = self._totals()
        g, c = GaugeMetricFamily, CounterMetricFamily
        yield g("yai_spool_daemon_spools", "Spools this daemon manages", value=len(snaps))
        yield c(
            "yai_spool_daemon_requests", "PutLogs requests this daemon sent", value=totals.requests
        )
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
