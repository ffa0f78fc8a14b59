"""What does refusing a record cost the application thread, next to accepting one?

Owns: the drop-cost figure of README ("Spool full"). Two ``SpoolHandler(flusher="none",
when_full="drop_newest")`` handlers, driven through ``logging.Handler.handle`` with the same
typical records (``benchlib.make_records``): one with room (every record accepted: map + one
INSERT), one whose spool is full (every record refused and counted). Repetitions alternate
between the two (interleaved), each call timed with ``perf_counter_ns``; the median is the
median of the per-repetition medians, p99 pools every sample.

Nothing here is a test: no assertion on time.

Run: ``python benchmarks/bench_drop.py [--calls 20000] [--reps 5]`` (< 1 min). To compare with
another checkout, copy this file and ``benchlib.py`` into its ``benchmarks/`` and run it there.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import fmt_us, make_records, percentile

from yai_spool.handlers.durable import SpoolHandler


def _handler(path: Path, max_records: int) -> SpoolHandler:
    return SpoolHandler(
        project="bench-drop",
        logstore="drop-store",
        spool_path=path,
        flusher="none",
        when_full="drop_newest",
        max_spool_records=max_records,
    )


def _time(handler: logging.Handler, records: list[logging.LogRecord]) -> list[int]:
    out = []
    for record in records:
        started = time.perf_counter_ns()
        handler.handle(record)
        out.append(time.perf_counter_ns() - started)
    return out


def _us(ns: float) -> str:
    return fmt_us(ns / 1000)


def main() -> None:
    args = benchlib.begin("bench_drop", __doc__, calls=20_000, reps=5)
    samples: dict[str, list[int]] = {"accepted": [], "refused (spool full)": []}
    medians: dict[str, list[float]] = {k: [] for k in samples}
    dropped = 0
    with tempfile.TemporaryDirectory(prefix="yai-spool-drop-") as tmp:
        full = _handler(Path(tmp) / "full.spool", 1000)
        for record in make_records(1000, seed=1):
            full.handle(record)  # fill it
        for rep in range(args.reps):
            room = _handler(Path(tmp) / f"room-{rep}.spool", 10_000_000)
            records = make_records(args.calls, seed=rep)
            warm = make_records(500, seed=100 + rep)
            for name, handler in (("accepted", room), ("refused (spool full)", full))[
                :: 1 if rep % 2 == 0 else -1
            ]:
                _time(handler, warm)
                ns = _time(handler, records)
                samples[name] += ns
                medians[name].append(statistics.median(ns))
            room.close()
        dropped = full.stats()["spool"].dropped_total
        full.close()
    rows = []
    base = statistics.median(medians["accepted"])
    for name, ns in samples.items():
        ns.sort()
        median = statistics.median(medians[name])
        rows.append(
            [
                name,
                f"{len(ns):,}",
                _us(median),
                f"{median / base:.2f}x",
                _us(percentile(ns, 99)),
                _us(percentile(ns, 99.9)),
            ]
        )
    print(benchlib.table(["handle()", "calls", "median", "vs accepted", "p99", "p99.9"], rows))
    print(f"\nrecords refused and counted: {dropped:,}")


if __name__ == "__main__":
    main()
