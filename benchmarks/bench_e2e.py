"""End to end: one producer thread logs N records; how fast does the emulator hold them all?

Owns: the throughput / CPU / memory benchmark of the whole pipeline (issue targets: >= 40,000
records/s from one producer thread, <= 35 µs of CPU per delivered record).

Every configuration runs in a FRESH subprocess (so each peak RSS is its own) that calls
``logger.info("user %s paid %d EUR", ..., extra={...})`` N times from its main thread, then
``handler.flush()`` (the official handler's ``flush()`` is its ``stop()``), and polls the emulator
until it holds all N. The emulator is another subprocess, shared by the runs (its CPU is
reported separately, as the delta of its ``/proc/<pid>/stat``).

Configurations:

- ``aliyun QueuedLogHandler``: the official handler (defaults; HTTP_PROXY to the emulator).
  THE baseline of the ratio column.
- ``SpoolHandler thread``: ours, defaults (durable commit per record, flusher thread).
- ``QueueListener -> PutLogsClient``: a NON-durable floor with our parts: stdlib
  QueueHandler/QueueListener, the listener maps records (``RecordMapper``) and ships batches of
  4096 with ``PutLogsClient``. What durability costs is the gap between it and ours.
- ``logging only``: the same logger calls into a handler that drops them: the application's own
  cost of making records, included in every other row's CPU.

- ``SpoolHandler none + drainer process``: ours with ``flusher="none"``; a ``ThreadFlusher`` in
  a second process (the ``yai-spool run`` model) ships the spool. Its CPU is added to the row's
  CPU; peak RSS is the larger of the two processes.

Columns: records/s = N / (first call .. emulator holds N); CPU µs/record = the child's user+sys
CPU (all its threads, ``resource.getrusage``) / N; emulator CPU µs/record; peak RSS =
``ru_maxrss`` of the child. Repetitions are interleaved; the table shows medians. A warm-up of
500 records (imports, connections, the flusher thread) precedes every measured run.

Run: ``python benchmarks/bench_e2e.py [--quick] [--records 100000] [--reps 3]``
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import resource
import time
from pathlib import Path
from typing import Any

import benchlib
import benchruns
from benchhandlers import DropHandler
from benchlib import AK, PROJECT, SK, ratio
from benchruns import ChildRun, Outcome, Plan

BASELINE = "aliyun QueuedLogHandler"
WARMUP = 500
DRAINED = "SpoolHandler none + drainer process"
CONFIGS = (
    BASELINE,
    "SpoolHandler thread",
    DRAINED,
    "QueueListener -> PutLogsClient",
    "logging only",
)


class _BatchShipper(logging.Handler):
    """QueueListener target: map each record, ship every 4096 with PutLogsClient."""

    def __init__(self, url: str, logstore: str) -> None:
        super().__init__()
        from yai_spool.handlers.mapping import RecordMapper
        from yai_spool.sls.client import PutLogsClient

        self.client = PutLogsClient(url, access_key_id=AK, access_key_secret=SK)
        self.mapper = RecordMapper()
        self.logstore = logstore
        self.pending: list[Any] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.pending.append(self.mapper.map(record))
        if len(self.pending) >= 4096:
            self.ship()

    def ship(self) -> None:
        from yai_spool.sls.model import Log, LogGroup

        if not self.pending:
            return
        logs = tuple(
            Log(e["time"], tuple((k, v) for k, v in e["contents"]), e["time_ns"])
            for e in self.pending
        )
        self.pending = []
        self.client.put_logs(PROJECT, self.logstore, LogGroup(logs, source="bench-host"))

    def flush(self) -> None:
        self.ship()

    def close(self) -> None:
        self.ship()
        self.client.close()
        super().close()


def child(run: ChildRun) -> dict[str, Any]:
    """One run in this fresh process: what the parent tabulates."""
    config, url, logstore, n = run.config, run.url, run.logstore, run.n
    emulator_stats = run.prepare()

    listener = None
    drainer = None
    if config in ("SpoolHandler thread", DRAINED):
        from yai_spool.handlers.durable import SpoolHandler

        spool_path = Path(run.directory) / f"{logstore}.spool"
        thread = config == "SpoolHandler thread"
        handler: logging.Handler = SpoolHandler(
            project=PROJECT,
            logstore=logstore,
            endpoint=url if thread else None,
            flusher="thread" if thread else "none",
            access_key_id=AK,
            access_key_secret=SK,
            source="bench-host",
            spool_path=spool_path,
            flush_timeout=120.0,
            close_timeout=5.0,
        )
        if not thread:
            drainer = benchlib.Drainer(spool_path, url)
    elif config == BASELINE:
        from aliyun.log import QueuedLogHandler

        handler = QueuedLogHandler("sls.example.test", AK, SK, PROJECT, logstore, close_wait=120)
    elif config == "QueueListener -> PutLogsClient":
        q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        listener = logging.handlers.QueueListener(q, _BatchShipper(url, logstore))
        listener.start()
        handler = logging.handlers.QueueHandler(q)
    else:
        handler = DropHandler()
    logger = run.logger(handler)
    shipping = config != "logging only"

    if shipping:  # warm-up: imports, connections, the flusher thread; not measured
        for i in range(WARMUP):
            logger.info("warm-up %d", i)
        if listener is not None:
            listener.stop()
            listener.handlers[0].flush()
            listener.start()
        elif drainer is not None:
            pass  # the drainer ships on its own
        else:
            handler.flush()
            if config == BASELINE:  # its flush() stopped its worker: start a fresh one
                handler.stop_flag = False  # type: ignore[attr-defined]
                handler.init_worker()  # type: ignore[attr-defined]
        emulator_stats.wait_for(run.expect - n, timeout=60)
    cpu0 = benchlib.cpu_self()
    drainer_cpu = drainer.cpu() if drainer is not None else 0.0
    start = time.perf_counter()
    for i in range(n):
        extra = {"order_id": f"o-{i}", "ms": 1.5}
        logger.info("user %s paid %d EUR", f"user-{i % 5000}", i % 997, extra=extra)
    emitted = time.perf_counter()
    if listener is not None:
        listener.stop()  # drains the queue into the shipper
        listener.handlers[0].close()
    elif shipping and drainer is None:
        handler.flush()
    delivered = emulator_stats.wait_for(run.expect, timeout=600) if shipping else True
    done = time.perf_counter()
    cpu = benchlib.cpu_self() - cpu0
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    extra_cpu, extra_rss = 0.0, 0.0
    if drainer is not None:
        extra_cpu = drainer.cpu() - drainer_cpu
        extra_rss = drainer.peak_rss_mb()
        drainer.stop()
    handler.close()
    return {
        "emit_s": emitted - start,
        "total_s": done - start,
        "cpu_s": cpu + extra_cpu,
        "maxrss_mb": max(maxrss_mb, extra_rss),
        "delivered": delivered,
    }


def _progress(out: dict[str, Any], n: int) -> str:
    return f"cpu {out['cpu_s'] / n * 1e6:.1f} µs/rec, got {out['got']}"


PLAN = Plan(__file__, __doc__, CONFIGS, child, WARMUP, (10_000, 100_000), _progress)


def report(outcome: Outcome) -> None:
    n, reps, results, med = outcome.records, outcome.reps, outcome.results, outcome.med
    print(outcome.header("bench_e2e: one producer thread -> emulator (subprocess)", f"{n}"))

    base_rate = n / med(BASELINE, "total_s")
    rows = []
    for config in CONFIGS:
        runs = results[config]
        shipping = config != "logging only"
        rate = n / med(config, "total_s")
        rows.append(
            [
                config,
                f"{rate:,.0f}" if shipping else "-",
                ratio(rate, base_rate) if shipping else "-",
                f"{n / med(config, 'emit_s'):,.0f}",
                f"{med(config, 'cpu_s') / n * 1e6:.1f}",
                f"{med(config, 'emu_cpu_s') / n * 1e6:.1f}" if shipping else "-",
                f"{max(r['maxrss_mb'] for r in runs):.0f} MB",
                "yes" if not shipping or all(r["got"] >= n for r in runs) else "NO",
            ]
        )
    print(
        benchlib.table(
            [
                "configuration",
                "delivered rec/s",
                "ratio vs baseline",
                "emit-loop rec/s",
                "CPU µs/rec",
                "emulator CPU µs/rec",
                "peak RSS",
                "all delivered",
            ],
            rows,
        )
    )
    print(f"\nbaseline: {BASELINE}; medians of {reps} runs; peak RSS = max over runs")
    ours = "SpoolHandler thread"
    rate = n / med(ours, "total_s")
    cpu = med(ours, "cpu_s") / n * 1e6
    print()
    print(
        benchlib.table(
            ["target", "met", "measured"],
            [
                [">= 40,000 records/s end to end", _yes(rate >= 40_000), f"{rate:,.0f}"],
                ["<= 35 µs CPU per delivered record", _yes(cpu <= 35), f"{cpu:.1f}"],
            ],
        )
    )


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def main() -> None:
    benchruns.main(PLAN, report)


if __name__ == "__main__":
    main()
