"""Prometheus metrics of yai-spool: every name, type, unit and help text, in one place.

Owns the metric families of a spool (what ``yai-spool run --metrics-port`` serves, and what
an application exposes for its own handlers with :func:`register`) and their names, which
follow the Prometheus conventions: a ``yai_spool_`` prefix, base units in the name
(``_seconds``, ``_bytes``), ``_total`` on counters (added by the exposition), a
``_timestamp_seconds`` suffix on Unix times, and no unit-less bare names. Values are read at
scrape time from the same snapshots ``yai-spool status`` uses, so nothing is counted twice.

Per spool (labels ``spool``, ``endpoint``, ``project``, ``logstore``; ``*`` where the spool's
rows pick the destination):

==========================================  =======  ==========================================
``yai_spool_records{state}``                gauge    records held: ``ready``, ``leased`` (the
                                                     backlog), ``dead`` (dead letters kept)
``yai_spool_record_bytes{state}``           gauge    their encoded bytes, by the same states
``yai_spool_file_bytes``                    gauge    database + WAL size on disk
``yai_spool_oldest_ready_age_seconds``      gauge    age of the oldest record waiting to ship
``yai_spool_appended_records_total``        counter  records appended (every process)
``yai_spool_delivered_records_total``       counter  records SLS acknowledged
``yai_spool_retried_records_total``         counter  records given back for another attempt
``yai_spool_retry_requests_total``          counter  requests that failed and gave them back
``yai_spool_throttled_requests_total``      counter  requests SLS answered with a quota error
``yai_spool_dead_lettered_records_total``   counter  records moved to the dead letters
``yai_spool_dropped_records_total{reason}`` counter  records dropped before the spool kept them
``yai_spool_last_success_timestamp_seconds`` gauge   Unix time of the last delivery
``yai_spool_in_flight_requests``            gauge    this process's PutLogs requests awaiting
                                                     an answer
``yai_spool_flusher_held``                  gauge    1 if this process ships the spool
``yai_spool_flusher_pid``                   gauge    pid holding the flusher lock (0: none)
``yai_spool_spool_readable``                gauge    1 if the last stats read worked
==========================================  =======  ==========================================

The counters are the spool's durable counters (they survive restarts and include what other
processes delivered into the same spool). Renamed from 0.1 (issue 11): ``yai_spool_bytes``
-> ``yai_spool_record_bytes``, ``yai_spool_throttled_total`` ->
``yai_spool_throttled_requests_total``; ``yai_spool_in_flight_requests`` is new.

Invariants: ``prometheus_client`` is imported only when metrics are collected or registered
(it is the optional extra ``yai-spool[metrics]``); labels never carry a secret; a spool whose
stats cannot be read yields ``spool_readable 0`` and nothing else, never an exception.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["LABELS", "HandlerCollector", "SpoolSample", "register", "spool_families"]

#: Labels of every per-spool metric.
LABELS: Final = ("spool", "endpoint", "project", "logstore")


@dataclass(frozen=True, slots=True)
class SpoolSample:
    """One spool at scrape time: its labels, durable stats, and this process's flusher.

    ``stats`` is a ``SpoolStats`` (None: reading it failed just now); ``flusher`` a
    ``FlusherStats.snapshot()`` of this process's flusher for the spool, or None.
    """

    labels: tuple[str, str, str, str]
    stats: Any
    flusher: Mapping[str, Any] | None
    holder: bool


def spool_families(samples: Iterable[SpoolSample]) -> list[Any]:
    """The per-spool metric families (``prometheus_client`` ``MetricFamily`` objects)."""
    from prometheus_client.core import (  # noqa: PLC0415 - the optional extra, on use only
        CounterMetricFamily,
        GaugeMetricFamily,
    )

    g, c, labels = GaugeMetricFamily, CounterMetricFamily, list(LABELS)
    records = g(
        "yai_spool_records", "Records held in the spool, by state", labels=[*labels, "state"]
    )
    nbytes = g(
        "yai_spool_record_bytes",
        "Encoded bytes of the records held, by state",
        labels=[*labels, "state"],
        unit="bytes",
    )
    file_bytes = g(
        "yai_spool_file_bytes", "Database plus WAL size on disk", labels=labels, unit="bytes"
    )
    oldest = g(
        "yai_spool_oldest_ready_age_seconds",
        "Age of the oldest record waiting to ship",
        labels=labels,
        unit="seconds",
    )
    readable = g("yai_spool_spool_readable", "1 if the last stats read worked", labels=labels)
    holder_pid = g(
        "yai_spool_flusher_pid", "Pid holding the spool's flusher lock (0 = none)", labels=labels
    )
    held = g("yai_spool_flusher_held", "1 if this process ships the spool", labels=labels)
    in_flight = g(
        "yai_spool_in_flight_requests",
        "PutLogs requests of this process awaiting an answer",
        labels=labels,
    )
    last_ok = g(
        "yai_spool_last_success_timestamp_seconds",
        "Unix time of the last delivery",
        labels=labels,
        unit="seconds",
    )
    counters = {
        source: c(name, text, labels=labels)
        for source, name, text in (
            ("appended", "yai_spool_appended_records", "Records appended (every process)"),
            ("delivered", "yai_spool_delivered_records", "Records acknowledged by SLS"),
            (
                "retried",
                "yai_spool_retried_records",
                "Records given back for another attempt (any cause)",
            ),
            (
                "retry_requests",
                "yai_spool_retry_requests",
                "PutLogs requests that failed and gave their records back (any cause)",
            ),
            (
                "throttled_requests",
                "yai_spool_throttled_requests",
                "Requests SLS answered with a quota (throttling) error",
            ),
            (
                "dead_lettered",
                "yai_spool_dead_lettered_records",
                "Records moved to the dead letters",
            ),
        )
    }
    dropped = c(
        "yai_spool_dropped_records",
        "Records dropped before the spool kept them, by reason",
        labels=[*labels, "reason"],
    )
    for sample in samples:
        values = list(sample.labels)
        held.add_metric(values, 1.0 if sample.holder else 0.0)
        in_flight.add_metric(values, float((sample.flusher or {}).get("in_flight", 0)))
        stats = sample.stats
        readable.add_metric(values, 0.0 if stats is None else 1.0)
        if stats is None:
            continue
        for state, n, b in (
            ("ready", stats.ready_records, stats.ready_bytes),
            ("leased", stats.leased_records, stats.leased_bytes),
            ("dead", stats.dead_records, stats.dead_bytes),
        ):
            records.add_metric([*values, state], n)
            nbytes.add_metric([*values, state], b)
        file_bytes.add_metric(values, stats.file_bytes + stats.wal_bytes)
        oldest.add_metric(values, stats.oldest_ready_age or 0.0)
        holder_pid.add_metric(values, stats.flusher_pid or 0)
        if stats.last_success_at is not None:
            last_ok.add_metric(values, stats.last_success_at)
        for source, family in counters.items():
            family.add_metric(values, getattr(stats, source))
        for reason, n in sorted(stats.dropped.items()):
            dropped.add_metric([*values, reason], n)
    return [
        records, nbytes, file_bytes, oldest, readable, holder_pid, held, in_flight, last_ok,
        *counters.values(), dropped,
    ]  # fmt: skip


class HandlerCollector:
    """A ``prometheus_client`` collector over this process's yai-spool handlers.

    For applications whose handlers ship in-process (``SpoolHandler``, the memory and
    asyncio modes): register it on your registry and scrape it with the rest of your
    metrics. Handlers are held weakly (a collected handler disappears from the metrics);
    handlers without a queue (``SyncSLSHandler``) are skipped.
    """

    def __init__(self, handlers: Iterable[Any] = ()) -> None:
        self._handlers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        for handler in handlers:
            self.add(handler)

    def add(self, handler: Any) -> None:
        """Include ``handler`` (anything with ``stats()`` returning ``spool``/``flusher``)."""
        with self._lock:
            self._handlers.add(handler)

    def describe(self) -> list[Any]:
        return []  # unchecked collector: the set of handlers changes at run time

    def collect(self) -> Iterator[Any]:
        with self._lock:
            handlers = list(self._handlers)
        yield from spool_families(filter(None, map(_handler_sample, handlers)))


def _handler_sample(handler: Any) -> SpoolSample | None:
    try:
        snapshot = handler.stats()
    except Exception:  # a closed or broken handler: report it unreadable, never raise
        snapshot = {"spool": None, "flusher": None}
    if not isinstance(snapshot, Mapping) or "spool" not in snapshot:
        return None
    stats, flusher = snapshot.get("spool"), snapshot.get("flusher")
    if stats is not None and not hasattr(stats, "ready_records"):
        return None
    path = getattr(stats, "path", None) or str(getattr(handler, "spool_path", "") or "")
    labels = (
        str(path),
        str(getattr(handler, "endpoint", "") or ""),
        str(getattr(handler, "project", "") or "*"),
        str(getattr(handler, "logstore", "") or "*"),
    )
    return SpoolSample(labels, stats, flusher, bool((flusher or {}).get("is_flusher")))


def register(*handlers: Any, registry: Any = None) -> HandlerCollector:
    """Expose ``handlers`` on ``registry`` (default: ``prometheus_client.REGISTRY``).

    Returns the collector; ``collector.add(handler)`` adds more later.

    Raises:
        ImportError: prometheus-client is not installed (``pip install 'yai-spool[metrics]'``).
    """
    if registry is None:
        from prometheus_client import REGISTRY  # noqa: PLC0415 - the optional extra

        registry = REGISTRY
    collector = HandlerCollector(handlers)
    registry.register(collector)
    return collector
