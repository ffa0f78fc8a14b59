"""What does keeping the WAL short cost one append, and how large does the WAL get?

Owns: the append-latency side of README's WAL figures. One ``Spool`` (no flusher, no handler:
just ``Spool.append_log`` of a 460-byte stored record) appends N records in a tight loop, the
worst case for the WAL (no pause ever lets a checkpoint catch up); every 500 appends the
``-wal`` file is measured. Reports median / p99 / p99.9 of one append and the largest WAL.

Nothing here is a test: no assertion on time.

Run: ``python benchmarks/bench_wal.py [--appends 60000] [--reps 3]`` (< 1 min). To compare with
another checkout, copy this file and ``benchlib.py`` into its ``benchmarks/`` and run it there.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import fmt_us, percentile

from yai_spool.spool import Spool


def run(directory: Path, appends: int) -> tuple[list[float], int]:
    spool = Spool(directory / "wal.spool")
    data = b"\x0a" + bytes([200, 3]) + b"x" * 456
    samples: list[float] = []
    largest = 0
    for i in range(appends):
        started = time.perf_counter_ns()
        spool.append_log(data, dest="d", log_time=1, level="INFO", logger="bench")
        samples.append((time.perf_counter_ns() - started) / 1000)
        if i % 500 == 0:
            largest = max(largest, os.stat(f"{spool.path}-wal").st_size)
    spool.close()
    return samples, largest


def main() -> None:
    args = benchlib.begin("bench_wal", __doc__, appends=60_000, reps=3)
    rows = []
    for rep in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="yai-spool-wal-") as tmp:
            samples, largest = run(Path(tmp), args.appends)
        samples.sort()
        rows.append(
            [
                rep + 1,
                f"{args.appends:,}",
                fmt_us(percentile(samples, 50)),
                fmt_us(percentile(samples, 99)),
                fmt_us(percentile(samples, 99.9)),
                f"{largest / 1e6:.1f} MB",
            ]
        )
    print(benchlib.table(["rep", "appends", "median", "p99", "p99.9", "largest WAL"], rows))


if __name__ == "__main__":
    main()
