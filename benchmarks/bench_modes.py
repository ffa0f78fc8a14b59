"""Every delivery mode side by side: per-call cost, end-to-end rate, CPU, event-loop lag.

Owns: the comparison of yai-spool's modes (``yai_spool.make_handler(mode=...)``) with the two
official clients as reference rows, all measured in ONE run, interleaved:

- ``sync``: ``SyncSLSHandler``: one PutLogs call inside each ``emit``.
- ``memory + thread``: ``MemoryQueueHandler``: bounded in-memory queue, flusher thread.
- ``spool + thread``: ``SpoolHandler``: durable SQLite spool, flusher thread.
- ``spool + daemon process``: ``SpoolHandler(flusher="none")`` and a ``ThreadFlusher`` in a
  second process (the ``yai-spool run`` model); its CPU is added to the row.
- ``asyncio + memory`` / ``asyncio + spool``: the asyncio flusher task over a memory queue /
  the durable spool (``AsyncPutLogsClient``, no thread pool for network I/O).
- ``aliyun QueuedLogHandler``: the official handler (reference).
- ``aliyun-log-producer``: the official Rust producer behind a minimal ``logging.Handler`` that
  sends ``RecordMapper`` contents as a dict per record (reference).
- ``logging only``: the same calls into a handler that drops them (the application's own
  cost of making records, inside every row's CPU).

Every configuration runs in a FRESH subprocess that runs an asyncio program: one coroutine
logs N records (``logger.info("user %s paid %d EUR", ..., extra=...)``), yielding to the
loop every 50 records, while a probe task asks for a 1 ms sleep over and over; the probe's
overshoot is the **event-loop lag** (what a request handler on the same loop would wait).
Each ``logger.info`` call is timed (**per-call median / p99**). After the last call the
handler is flushed and the emulator (another subprocess) polled until it holds all N:
**records/s** = N / (first call .. all delivered); **CPU µs/rec** = the child's user+sys CPU
(all threads, plus the daemon process for that row) / N. ``sync`` logs fewer records (each
one is a round trip); its N is shown.

Run: ``python benchmarks/bench_modes.py [--quick] [--records 30000] [--reps 3]``
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import benchlib
import benchruns
from benchhandlers import DropHandler, ProducerHandler
from benchlib import AK, PROJECT, SK, fmt_us, percentile
from benchruns import ChildRun, Outcome, Plan

WARMUP = 300
CHUNK = 50  # records logged between two yields to the loop
SYNC_SHARE = 0.05  # sync logs this share of N (each record is one round trip)
CONFIGS = (
    "sync",
    "memory + thread",
    "spool + thread",
    "spool + daemon process",
    "asyncio + memory",
    "asyncio + spool",
    "aliyun QueuedLogHandler",
    "aliyun-log-producer",
    "logging only",
)


class _ProducerHandler(ProducerHandler):
    """The Rust producer behind logging: RecordMapper contents as one dict per record."""

    def __init__(self, logstore: str) -> None:
        super().__init__(logstore, linger=0.5)
        from yai_spool.handlers.mapping import RecordMapper

        self.mapper = RecordMapper()

    def emit(self, record: logging.LogRecord) -> None:
        entry = self.mapper.map(record)
        self.writer.send(
            {k: v for k, v in entry["contents"]},
            time=entry["time"],
            time_ns=entry["time_ns"],
            source="bench-host",
        )


def _handler(config: str, url: str, logstore: str, directory: str) -> tuple[logging.Handler, Any]:
    """The handler of a configuration, and the daemon drainer when there is one."""
    import yai_spool

    common: dict[str, Any] = {
        "project": PROJECT,
        "logstore": logstore,
        "endpoint": url,
        "access_key_id": AK,
        "access_key_secret": SK,
        "source": "bench-host",
    }
    spool_path = Path(directory) / f"{logstore}.spool"
    if config == "sync":
        return yai_spool.make_handler("sync", **common), None
    if config == "memory + thread":
        return yai_spool.make_handler("memory", **common, flush_timeout=120.0), None
    if config == "spool + thread":
        return yai_spool.make_handler(
            "spool", **common, spool_path=spool_path, flush_timeout=120.0
        ), None
    if config == "spool + daemon process":
        handler = yai_spool.make_handler("daemon", **common, spool_path=spool_path)
        return handler, benchlib.Drainer(spool_path, url)
    if config == "asyncio + memory":
        return yai_spool.make_handler("asyncio", queue="memory", **common), None
    if config == "asyncio + spool":
        return yai_spool.make_handler("asyncio", **common, spool_path=spool_path), None
    if config == "aliyun QueuedLogHandler":
        from aliyun.log import QueuedLogHandler

        return QueuedLogHandler("sls.example.test", AK, SK, PROJECT, logstore, close_wait=120), None
    if config == "aliyun-log-producer":
        return _ProducerHandler(logstore), None
    return DropHandler(), None


async def _flush(config: str, handler: logging.Handler, flushers: list[Any]) -> None:
    if flushers:
        for flusher in flushers:
            while not await flusher.flush(120.0):
                pass  # a failed attempt answers early; the emulator is up: try again
        return
    if config == "aliyun QueuedLogHandler":
        return  # its flush() stops its worker; the emulator poll below waits for it
    if config in ("spool + daemon process", "logging only"):
        return
    await asyncio.to_thread(handler.flush)


async def _probe(lags: list[float], stop: asyncio.Event) -> None:
    """Ask for 1 ms sleeps; record how late each one woke (the event-loop lag)."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(max(0.0, time.perf_counter() - start - 0.001))


async def _program(
    config: str, logger: logging.Logger, n: int, handler: logging.Handler
) -> dict[str, Any]:
    from yai_spool.handlers.aio import running

    asyncio_mode = config.startswith("asyncio")
    async with running(handler) if asyncio_mode else _nothing() as flushers:
        for i in range(WARMUP):  # imports, connections, threads; not measured
            logger.info("warm-up %d", i)
        await _flush(config, handler, flushers or [])
        lags: list[float] = []
        stop = asyncio.Event()
        probe = asyncio.create_task(_probe(lags, stop))
        await asyncio.sleep(0.01)
        samples: list[int] = []
        clock = time.perf_counter_ns
        cpu0 = benchlib.cpu_self()
        start = time.perf_counter()
        for i in range(n):
            extra = {"order_id": f"o-{i}", "ms": 1.5}
            t0 = clock()
            logger.info("user %s paid %d EUR", f"user-{i % 5000}", i % 997, extra=extra)
            samples.append(clock() - t0)
            if i % CHUNK == CHUNK - 1:
                await asyncio.sleep(0)
        emitted = time.perf_counter()
        await _flush(config, handler, flushers or [])  # the probe runs on: drains count too
        flushed = time.perf_counter()
        stop.set()
        await probe
    return {
        "samples": samples,
        "lags": lags,
        "start": start,
        "emitted": emitted,
        "flushed": flushed,
        "cpu0": cpu0,
    }


class _nothing:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def child(run: ChildRun) -> dict[str, Any]:
    """One run in this fresh process: what the parent tabulates."""
    config, n = run.config, run.n
    emulator = run.prepare()
    handler, drainer = _handler(config, run.url, run.logstore, run.directory)
    logger = run.logger(handler)
    shipping = config != "logging only"
    drainer_cpu = drainer.cpu() if drainer is not None else 0.0
    out = asyncio.run(_program(config, logger, n, handler))
    delivered = emulator.wait_for(run.expect, timeout=600) if shipping else True
    done = time.perf_counter()
    cpu = benchlib.cpu_self() - out["cpu0"]
    extra_cpu = drainer.cpu() - drainer_cpu if drainer is not None else 0.0
    if drainer is not None:
        drainer.stop()
    handler.close()
    samples = sorted(out["samples"])
    lags = sorted(out["lags"])
    return {
        "n": n,
        "median_ns": statistics.median(samples),
        "p99_ns": percentile(samples, 99),
        "total_s": done - out["start"],
        "emit_s": out["emitted"] - out["start"],
        "cpu_s": cpu + extra_cpu,
        "lag_p99_ms": percentile(lags, 99) * 1e3,
        "lag_max_ms": (lags[-1] if lags else 0.0) * 1e3,
        "delivered": delivered,
    }


def _records(config: str, n: int) -> int:
    """``sync`` logs a share of N (each of its records is one round trip)."""
    return max(100, int(n * SYNC_SHARE)) if config == "sync" else n


def _progress(out: dict[str, Any], n: int) -> str:
    return f"median {out['median_ns'] / 1e3:.1f} µs, lag p99 {out['lag_p99_ms']:.2f} ms"


PLAN = Plan(__file__, __doc__, CONFIGS, child, WARMUP, (3_000, 30_000), _progress, _records)


def report(outcome: Outcome) -> None:
    n, reps, results, med = outcome.records, outcome.reps, outcome.results, outcome.med
    producer = {"aliyun-log-producer": benchlib._version("aliyun-log-producer")}
    title = "bench_modes: every delivery mode, one asyncio program per run"
    print(outcome.header(title, f"{n} ({_records('sync', n)} for sync)", producer))

    rows = []
    for config in CONFIGS:
        runs = results[config]
        shipping = config != "logging only"
        count = runs[0]["n"]
        rows.append(
            [
                config,
                f"{count}",
                fmt_us(med(config, "median_ns") / 1e3),
                fmt_us(max(r["p99_ns"] for r in runs) / 1e3),
                f"{count / med(config, 'total_s'):,.0f}" if shipping else "-",
                f"{med(config, 'cpu_s') / count * 1e6:.1f}",
                f"{med(config, 'lag_p99_ms'):.2f}",
                f"{max(r['lag_max_ms'] for r in runs):.1f}",
                "yes" if not shipping or all(r["got"] >= count for r in runs) else "NO",
            ]
        )
    print(
        benchlib.table(
            [
                "mode",
                "records",
                "per call median",
                "per call p99",
                "delivered rec/s",
                "CPU µs/rec",
                "loop lag p99 ms",
                "loop lag max ms",
                "all delivered",
            ],
            rows,
        )
    )
    print(
        f"\nmedians of {reps} runs (p99 per call and max lag: worst run). Loop lag: overshoot "
        "of 1 ms sleeps while the program logs, yielding every "
        f"{CHUNK} records; 'logging only' is the floor every row shares."
    )


def main() -> None:
    benchruns.main(PLAN, report)


if __name__ == "__main__":
    main()
