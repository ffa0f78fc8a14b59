"""Prometheus metrics: names follow the conventions, parsed back with prometheus_client's own
exposition parser, and the values say what happened to real records in a real spool.

A handler ships to the emulator through a 503, a quota error, a poison record and a request
held in flight; a second one drops records at its bound. Its collector's exposition is then
parsed with ``text_string_to_metric_families`` and every name is checked.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from yai_spool.daemon.config import ShippingConfig, SpoolTarget
from yai_spool.daemon.metrics import _Collector
from yai_spool.daemon.status import DaemonTotals, SpoolSnapshot
from yai_spool.ops.metrics import HandlerCollector, register
from yai_spool.spool import Spool
from yai_spool.testing import SLSEmulator

NAME = re.compile(r"yai_spool_[a-z][a-z0-9]*(_[a-z0-9]+)*")
# Units Prometheus wants as base units, and spellings that are not base units.
NOT_BASE_UNITS = re.compile(
    r"_(ms|millis|milliseconds|microseconds|us|minutes|hours|days|kb|mb|gb|kib|mib|"
    r"kilobytes|megabytes|percent|ratio_percent|count)(_|$)"
)
TIME_WORDS = ("age", "duration", "latency", "timestamp", "time")


def exposition(registry: CollectorRegistry) -> dict[str, object]:
    """family name -> family, parsed from the text exposition (as a scraper reads it)."""
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def check_conventions(families: dict[str, object]) -> None:
    """The naming rules every yai-spool metric keeps (a failure names the metric)."""
    for name, family in families.items():
        kind = family.type  # type: ignore[attr-defined]
        assert NAME.fullmatch(name), name
        assert family.documentation, f"{name}: no HELP text"  # type: ignore[attr-defined]
        assert not NOT_BASE_UNITS.search(name), f"{name}: not a base unit"
        assert kind in ("counter", "gauge"), (name, kind)
        for sample in family.samples:  # type: ignore[attr-defined]
            if kind == "counter":
                assert sample.name == f"{name}_total", (name, sample.name)
            else:
                assert sample.name == name, (name, sample.name)
        if kind == "gauge":
            assert not name.endswith("_total"), f"{name}: _total on a gauge"
        if any(word in name.split("_") for word in TIME_WORDS):
            assert name.endswith("_seconds"), f"{name}: a time not in seconds"
        if "timestamp" in name:
            assert name.endswith("_timestamp_seconds"), name
        if "bytes" in name:
            assert name.endswith("_bytes"), name
        quantity = name.removeprefix("yai_spool_")
        assert quantity not in ("bytes", "seconds", "total"), f"{name}: a bare unit"
        if kind == "counter":  # a counter counts things: a plural noun or a unit ends it
            assert quantity.endswith("s"), f"{name}: counts what?"


def value(families: dict[str, object], name: str, **labels: str) -> float:
    """The one sample of ``name`` (counters: its ``_total``) whose labels include ``labels``."""
    family = families[name]
    found = [
        s.value
        for s in family.samples  # type: ignore[attr-defined]
        if not s.name.endswith("_created") and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, (name, labels, found)
    return float(found[0])


def test_handler_metrics_follow_conventions_and_count_what_happened(
    sls_emulator: SLSEmulator,
) -> None:
    handler = sls_emulator.handler(max_in_flight=1)
    bounded = sls_emulator.handler(mode="daemon", max_spool_records=3)
    registry = CollectorRegistry(auto_describe=False)
    collector = register(handler, registry=registry)
    collector.add(bounded)
    faults = sls_emulator.emulator.faults
    log = logging.getLogger("metrics.app")
    log.addHandler(handler)
    try:
        faults.fail_next(1, error_code="ServerBusy")
        log.warning("after a 503")
        sls_emulator.wait_for(1, message="after a 503")
        faults.fail_next(1, error_code="WriteQuotaExceed")
        log.warning("after a quota error")
        sls_emulator.wait_for(1, message="after a quota error")
        faults.poison({"key": "message", "contains": "POISON"})
        log.warning("POISON record")
        log.warning("its neighbour")
        sls_emulator.wait_for(1, message="its neighbour")
        faults.clear(["poison"])
        faults.hang(n=1)
        log.warning("held in flight")
        assert faults.wait_held(1, timeout=10)
        held = exposition(registry)
        faults.release()
        sls_emulator.wait_for(1, message="held in flight")
    finally:
        log.removeHandler(handler)
    for i in range(5):
        record = logging.LogRecord("metrics.bounded", logging.INFO, "f.py", 1, f"b{i}", (), None)
        bounded.handle(record)
    assert handler.flush_until(10)  # type: ignore[attr-defined]

    families = exposition(registry)
    check_conventions(families)
    spool_label = {"spool": str(handler.spool_path)}  # type: ignore[attr-defined]
    bounded_label = {"spool": str(bounded.spool_path)}  # type: ignore[attr-defined]
    assert value(held, "yai_spool_in_flight_requests", **spool_label) == 1
    assert value(families, "yai_spool_in_flight_requests", **spool_label) == 0
    assert value(families, "yai_spool_delivered_records", **spool_label) == 4
    assert value(families, "yai_spool_appended_records", **spool_label) == 5
    assert value(families, "yai_spool_retried_records", **spool_label) >= 1
    assert value(families, "yai_spool_throttled_requests", **spool_label) == 1
    # Requests, not records: the 503 and the quota answer, one request each.
    assert value(families, "yai_spool_retry_requests", **spool_label) == 2
    assert value(families, "yai_spool_dead_lettered_records", **spool_label) == 1
    assert value(families, "yai_spool_records", state="dead", **spool_label) == 1
    assert value(families, "yai_spool_records", state="ready", **spool_label) == 0
    assert value(families, "yai_spool_records", state="leased", **spool_label) == 0
    assert value(families, "yai_spool_record_bytes", state="dead", **spool_label) > 0
    assert value(families, "yai_spool_file_bytes", **spool_label) > 0
    assert value(families, "yai_spool_last_success_timestamp_seconds", **spool_label) > 1.6e9
    assert value(families, "yai_spool_flusher_held", **spool_label) == 1
    assert value(families, "yai_spool_spool_readable", **spool_label) == 1
    assert value(families, "yai_spool_records", state="ready", **bounded_label) == 3
    assert value(families, "yai_spool_oldest_ready_age_seconds", **bounded_label) >= 0
    assert value(families, "yai_spool_dropped_records", reason="drop_oldest", **bounded_label) == 2
    assert value(families, "yai_spool_flusher_held", **bounded_label) == 0
    assert sls_emulator.access_key_secret not in generate_latest(registry).decode()
    # The list: backlog records and bytes, oldest age, delivered, retried, throttled,
    # dead, dropped by reason, last success time, in-flight requests.
    assert {
        "yai_spool_records",
        "yai_spool_record_bytes",
        "yai_spool_oldest_ready_age_seconds",
        "yai_spool_delivered_records",
        "yai_spool_retried_records",
        "yai_spool_throttled_requests",
        "yai_spool_retry_requests",
        "yai_spool_dead_lettered_records",
        "yai_spool_dropped_records",
        "yai_spool_last_success_timestamp_seconds",
        "yai_spool_in_flight_requests",
    } <= set(families)


def test_daemon_metrics_follow_conventions(tmp_path: Path) -> None:
    """The daemon's collector (process-wide families included), over a real spool's stats."""
    spool = Spool(tmp_path / "d.spool")
    try:
        stats = spool.stats()
    finally:
        spool.close()
    target = SpoolTarget(
        path=tmp_path / "d.spool",
        endpoint="https://cn-hangzhou.log.aliyuncs.com",
        project=None,
        logstore="app-logs",
        topic=None,
        shipping=ShippingConfig(),
        source="spools[0]",
    )
    snapshots = [
        SpoolSnapshot(target, stats, {"in_flight": 2}, holder=True),
        SpoolSnapshot(target, None, {}, holder=False, error="SpoolBusyError: busy"),
    ]
    totals = DaemonTotals(delivered=7, requests=3, reloads=1, reload_failures=0, flusher_restarts=0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(lambda: snapshots, lambda: totals))  # type: ignore[arg-type]
    families = exposition(registry)
    check_conventions(families)
    assert value(families, "yai_spool_daemon_requests") == 3
    assert value(families, "yai_spool_daemon_delivered_records") == 7
    assert value(families, "yai_spool_daemon_reloads", result="ok") == 1
    assert value(families, "yai_spool_daemon_spools") == 2
    samples = families["yai_spool_spool_readable"].samples  # type: ignore[attr-defined]
    assert sorted(s.value for s in samples) == [0.0, 1.0]
    in_flight = families["yai_spool_in_flight_requests"].samples  # type: ignore[attr-defined]
    assert sorted(s.value for s in in_flight) == [0.0, 2.0]
    ready = value(families, "yai_spool_records", state="ready", logstore="app-logs", project="*")
    assert ready == 0


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("yai_spool_bytes", "gauge"),  # 0.1: a bare unit, no quantity
        ("yai_spool_throttled", "counter"),  # 0.1 (..._total): counts what? no noun/unit
        ("yai_spool_queue_ms", "gauge"),  # not a base unit
        ("yai_spool_oldest_age", "gauge"),  # a time without _seconds
        ("yai_spool_records_total", "gauge"),  # _total on a gauge
        ("queue_depth", "gauge"),  # no prefix
    ],
)
def test_the_convention_checker_rejects_bad_names(name: str, kind: str) -> None:
    """The checker can fail: the 0.1 names it replaced, and other classic mistakes."""

    class Family:
        type = kind
        documentation = "help"
        samples = ()

    with pytest.raises(AssertionError):
        check_conventions({name: Family})


def test_a_handler_without_a_queue_is_skipped_and_a_broken_one_is_unreadable() -> None:
    class NoQueue:
        def stats(self) -> dict[str, object]:
            return {"counts": {}}

    class Broken:
        spool_path = "/nowhere.spool"

        def stats(self) -> dict[str, object]:
            raise RuntimeError("closed")

    handlers = [NoQueue(), Broken()]  # held weakly by the collector: keep them alive
    collector = HandlerCollector(handlers)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # type: ignore[arg-type]
    families = exposition(registry)
    assert value(families, "yai_spool_spool_readable", spool="/nowhere.spool") == 0
    assert len(families["yai_spool_spool_readable"].samples) == 1  # type: ignore[attr-defined]
    del handlers
    gone = exposition(registry)
    assert gone["yai_spool_spool_readable"].samples == []  # type: ignore[attr-defined]
