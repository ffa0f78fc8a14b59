"""Durable records/s with many producer threads: what group commit buys, and what FULL costs.

Owns: the multi-thread emit benchmark (issue targets: aggregate durable rec/s at 8 producer
threads >= 3x a per-record-commit design; ``synchronous="FULL"`` at 8 threads within 2x of
``NORMAL``).

Contestants, each a fresh spool/database file, each record through ``logging.Handler.handle``
of one shared handler, built by the producing thread right before the call:

- ``sqlite3 per-record commit``: the design without group commit, at its floor: one shared
  connection, a lock, one autocommit INSERT of ``self.format(record)`` per record (the same
  pragmas as the spool: WAL, ``wal_autocheckpoint=0``); each ``emit`` returns after its own
  commit, like ours. In NORMAL and FULL.
- ``SpoolHandler none``: ``flusher="none"`` (map + encode + group commit), NORMAL and FULL.

Each configuration runs in a FRESH subprocess (no state, no GC debt carried over), in a
rotated order per repetition; rates are the median over repetitions, and every ratio is
paired within one repetition. T threads each log ``records // T`` records as fast as they can;
rate = records / wall time from the first start to the last finish.

Run: ``python benchmarks/bench_threads.py [--quick] [--reps 3] [--records 40000]``. Nothing
here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import benchlib
from benchhandlers import INSERT_LOG, SqliteFloor, spool_pragmas
from benchlib import PROJECT, make_record, ratio

THREADS = (1, 4, 8, 16)
SYNCS = ("NORMAL", "FULL")


class _PerRecordCommit(SqliteFloor):
    """One autocommit INSERT per record on one shared connection (the spool's pragmas)."""

    def __init__(self, path: Path, synchronous: str) -> None:
        super().__init__(path, spool_pragmas(synchronous))
        self.sql_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)  # outside the lock: threads format in parallel
        with self.sql_lock:
            self.cursor.execute(INSERT_LOG, (text, record.created))


def _child(kind: str, sync: str, threads: int, records: int, directory: str) -> None:
    path = Path(directory) / f"{kind}-{sync}-{threads}-{time.monotonic_ns()}.db"
    handler: logging.Handler
    if kind == "sqlite":
        handler = _PerRecordCommit(path, sync)
    else:
        from yai_spool.handlers.durable import SpoolHandler

        handler = SpoolHandler(
            project=PROJECT,
            logstore="threads",
            spool_path=path,
            source="bench-host",
            flusher="none",
            synchronous=sync,
            max_spool_records=10 * records,
        )
    per_thread = records // threads
    for i in range(200):  # warm-up: caches of the mapper, the statement cache
        handler.handle(make_record(10_000_000 + i))
    start = threading.Barrier(threads + 1)
    times: list[float] = []

    def produce(k: int) -> None:
        base = k * per_thread
        start.wait()
        for i in range(base, base + per_thread):
            handler.handle(make_record(i))
        times.append(time.perf_counter())

    workers = [threading.Thread(target=produce, args=(k,)) for k in range(threads)]
    t0 = benchlib.start_together(workers, start)
    elapsed = max(times) - t0
    cpu = time.process_time()
    handler.close()
    print(json.dumps({"rate": threads * per_thread / elapsed, "cpu": cpu}))


def main() -> None:
    parser = benchlib.quick_parser(__doc__, "< 60 s smoke run")
    parser.add_argument("--records", type=int, default=None, help="records per configuration")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, sync, threads, records, directory = args.child
        _child(kind, sync, int(threads), int(records), directory)
        return
    reps = args.reps or (1 if args.quick else 3)
    records = args.records or (8_000 if args.quick else 40_000)
    threads_list = (1, 8) if args.quick else THREADS
    configs = [(k, s, t) for k in ("sqlite", "spool") for s in SYNCS for t in threads_list]
    rates: dict[tuple[str, str, int], list[float]] = {c: [] for c in configs}
    started = time.monotonic()
    with benchlib.scratch_dir("yai-bench-threads-") as directory:
        for rep in range(reps):
            for kind, sync, threads in benchlib.rotated(configs, rep):
                # FULL fsyncs every commit: fewer records keep it inside the time budget.
                n = records if sync == "NORMAL" else max(records // 8, threads * 100)
                out = benchlib.run_child(
                    [__file__, "--child", kind, sync, str(threads), str(n), str(directory)],
                    timeout=600,
                )
                rates[(kind, sync, threads)].append(out["rate"])
                print(
                    f"  rep {rep + 1}/{reps} {kind} {sync} x{threads}: {out['rate']:,.0f} rec/s",
                    file=sys.stderr,
                )
    elapsed = time.monotonic() - started
    print(
        benchlib.env_header(
            "bench_threads: durable records/s with T producer threads (group commit)",
            {
                "repetitions": f"{reps} (fresh subprocess per configuration, rotated order)",
                "records": f"{records} per NORMAL configuration, 1/8 of that for FULL",
                "wall time": f"{elapsed:.0f} s",
            },
        )
    )
    med = {c: statistics.median(v) for c, v in rates.items()}
    rows = []
    for sync in SYNCS:
        for threads in threads_list:
            base = med[("sqlite", sync, threads)]
            ours = med[("spool", sync, threads)]
            paired = [
                a / b
                for a, b in zip(
                    rates[("spool", sync, threads)], rates[("sqlite", sync, threads)], strict=True
                )
            ]
            rows.append(
                [
                    f"{sync} x{threads}",
                    f"{base:,.0f}",
                    f"{ours:,.0f}",
                    f"{statistics.median(paired):.2f}x",
                ]
            )
    print(
        benchlib.table(
            ["threads", "sqlite3 per-record commit rec/s", "SpoolHandler rec/s", "ratio (paired)"],
            rows,
        )
    )
    checks = []
    if 8 in threads_list:
        base8 = med[("sqlite", "NORMAL", 8)]
        ours8 = med[("spool", "NORMAL", 8)]
        full8 = med[("spool", "FULL", 8)]
        checks.append(
            (
                ">= 3x a per-record-commit design at 8 threads",
                ours8 >= 3 * base8,
                ratio(ours8, base8),
            )
        )
        checks.append(
            ("FULL at 8 threads within 2x of NORMAL", ours8 <= 2 * full8, ratio(ours8, full8))
        )
    print()
    print(
        benchlib.table(
            ["target", "met", "measured"], [[t, "yes" if ok else "NO", m] for t, ok, m in checks]
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
