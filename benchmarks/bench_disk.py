"""Disk use per record during a burst, and how many records a small disk holds.

Owns: the disk-footprint figures of README ("Guarantees, per failure mode": disk full). No
flusher runs: records only accumulate, as while SLS is down or before ``yai-spool run``
starts. Two parts:

- ``burst``: one ``SpoolHandler(flusher="none")`` logs N typical records (~450 stored bytes
  each) as fast as it can; every 200 records the database and WAL file sizes are sampled.
  Reports the database bytes per record, the largest WAL seen during the burst, the peak
  (database + WAL) per record, and how long after the burst the WAL is empty again.
- ``tiny-disk`` (needs permission to mount a tmpfs; skipped otherwise): the same burst on a
  3 MiB tmpfs until the first record is dropped: how many records fit, at how many bytes each.

Nothing here is a test: no assertion on time or size.

Run: ``python benchmarks/bench_disk.py [--records 50000]`` (< 1 min). To compare with another
checkout, run it with ``PYTHONPATH=/path/to/that/checkout``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib

from yai_spool.handlers.durable import SpoolHandler


def _sizes(path: Path) -> tuple[int, int]:
    def size(p: Path) -> int:
        try:
            return p.stat().st_size
        except FileNotFoundError:
            return 0

    return size(path), size(Path(f"{path}-wal"))


def burst(directory: Path, records: int, *, until_drop: bool = False) -> dict[str, Any]:
    path = directory / "burst.spool"
    handler = SpoolHandler(
        project="bench-disk", logstore="disk-store", spool_path=path, flusher="none"
    )
    logger = benchlib.attach_logger("bench.disk", handler)
    pad = "x" * 300
    peak_wal = peak_total = 0
    stored = 0
    started = time.perf_counter()
    for n in range(records):
        logger.info("record %d %s", n, pad, extra={"seq": n, "user": "u-1"})
        if n % 200 == 199:
            db, wal = _sizes(path)
            peak_wal, peak_total = max(peak_wal, wal), max(peak_total, db + wal)
            if until_drop and handler.stats()["spool"].dropped_total:
                break
    elapsed = time.perf_counter() - started
    stats = handler.stats()["spool"]
    stored = stats.appended
    db, wal = _sizes(path)
    idle_started = time.monotonic()
    while wal and time.monotonic() - idle_started < 10:  # a poll, measuring, not syncing
        time.sleep(0.01)
        db, wal = _sizes(path)
    idle_after = time.monotonic() - idle_started
    handler.close()
    return {
        "stored": stored,
        "dropped": stats.dropped_total,
        "record_bytes": stats.ready_bytes / stats.ready_records if stats.ready_records else 0.0,
        "rate": stored / elapsed if elapsed else 0.0,
        "db_per_record": db / stored if stored else 0.0,
        "peak_wal": peak_wal,
        "peak_per_record": peak_total / stored if stored else 0.0,
        "wal_left": wal,
        "idle_after": idle_after,
    }


def tiny_disk(records: int) -> dict[str, Any] | str:
    with tempfile.TemporaryDirectory(prefix="yai-spool-disk-") as tmp:
        where = Path(tmp) / "mnt"
        where.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        if proc.returncode:
            return f"skipped: cannot mount a tmpfs ({proc.stderr.decode().strip()})"
        try:
            return burst(where, records, until_drop=True)
        finally:
            subprocess.run(["umount", "-l", str(where)], check=False)


def main() -> None:
    args = benchlib.begin("bench_disk", __doc__, records=50_000)
    with tempfile.TemporaryDirectory(prefix="yai-spool-disk-") as tmp:
        big = burst(Path(tmp), args.records)
    small = tiny_disk(args.records)
    rows = [
        [
            f"burst of {args.records:,} (no flusher)",
            f"{big['stored']:,}",
            f"{big['record_bytes']:.0f} B",
            f"{big['rate']:,.0f}",
            f"{big['db_per_record']:.0f} B",
            f"{big['peak_wal'] / 1e6:.1f} MB",
            f"{big['peak_per_record']:.0f} B",
            f"{big['wal_left']:,} B after {big['idle_after']:.1f} s",
        ]
    ]
    if isinstance(small, dict):
        rows.append(
            [
                "3 MiB tmpfs, until the first drop",
                f"{small['stored']:,}",
                f"{small['record_bytes']:.0f} B",
                f"{small['rate']:,.0f}",
                f"{small['db_per_record']:.0f} B",
                f"{small['peak_wal'] / 1e6:.2f} MB",
                f"{small['peak_per_record']:.0f} B",
                f"{small['wal_left']:,} B after {small['idle_after']:.1f} s",
            ]
        )
    print(
        benchlib.table(
            [
                "run",
                "records stored",
                "record size",
                "records/s",
                "db bytes/record",
                "largest WAL",
                "peak (db+WAL)/record",
                "WAL when idle",
            ],
            rows,
        )
    )
    if isinstance(small, str):
        print(f"\n3 MiB tmpfs: {small}")
    sys.stdout.flush()
    os._exit(0)  # no atexit work: the handler is closed, the directories are gone


if __name__ == "__main__":
    main()
