"""Spool benchmark: the append hot path, batch lease+ack, memory and drain of a big backlog.

Prints, with every case interleaved in every repetition (machine noise hits all alike):

1. per-append latency, median of the per-repetition medians and p99 over all samples:
   our JSON encoder alone; raw ``sqlite3`` autocommit INSERT of pre-encoded text (WAL, NORMAL);
   raw ``json.dumps`` + INSERT; ``Spool.append`` with synchronous NORMAL and FULL; stock
   ``persistqueue.SQLiteAckQueue.put`` (its defaults: pickle, WAL, synchronous FULL).
   A "flusher" checkpoints (PASSIVE) between blocks, as in production, outside the timing.
2. records/s of lease+ack with 4096-record batches against stock ``get`` + ``ack`` per record.
3. RSS of a fresh process holding (open, stats, one lease) a spool of N records (default 1e6).
4. drain of that backlog via lease(4096, 8 MiB) + ack only (entries decoded), plus the cost of
   the one-off scans: ``quick_check`` at open and the flusher-start lease recovery.

Run: ``python benchmarks/bench_spool.py [--reps 7] [--appends 2000] [--backlog 1000000]``.
Not a pytest test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import start_together
from persistqueue import SQLiteAckQueue

from yai_spool.spool import Spool, SpoolConfig, Synchronous, core
from yai_spool.spool.schema import decode_entries, encode_entry

# (append one record, checkpoint, close) for one case
Handles = tuple[Callable[[int], None], Callable[[], object], Callable[[], object]]
Setup = Callable[[Path], Handles]


def make_entry(i: int) -> dict:
    """A record as the mapper produces it (~330 bytes of JSON)."""
    return {
        "time": 1_764_300_000 + i // 1000,
        "time_ns": 123_456_789,
        "contents": [
            ["message", f"GET /api/v1/items?id={i} 200 in 12ms from 10.0.0.1"],
            ["level", "INFO"],
            ["logger", "app.access"],
            ["module", "views"],
            ["funcName", "get_item"],
            ["lineno", "123"],
            ["process", "1234"],
            ["thread", "MainThread"],
        ],
        "topic": "web",
        "source": "host-1",
        "tags": None,
    }


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Case:
    """One append implementation: setup() -> (op, checkpoint, close)."""

    def __init__(
        self,
        name: str,
        n: int,
        setup: Callable[[Path], Handles],
    ) -> None:
        self.name, self.n, self.setup = name, n, setup
        self.medians: list[float] = []
        self.samples: list[float] = []


def raw_setup(
    encode: bool,
) -> Setup:
    def setup(d: Path) -> Handles:
        path = d / f"raw-{encode}.db"
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        conn.execute(
            "CREATE TABLE q (_id INTEGER PRIMARY KEY, data TEXT, timestamp FLOAT, dest TEXT, "
            "nbytes INTEGER)"
        )
        ck = sqlite3.connect(path, isolation_level=None)
        cur = conn.cursor()
        fixed = json.dumps(make_entry(0))
        sql = "INSERT INTO q (data, timestamp, dest, nbytes) VALUES (?, ?, ?, ?)"

        def op(i: int) -> None:
            text = json.dumps(make_entry(i)) if encode else fixed
            cur.execute(sql, (text, time.time(), "p/l", len(text)))

        return (
            op,
            lambda: ck.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall(),
            lambda: (conn.close(), ck.close()),
        )

    return setup


def spool_setup(
    sync: Synchronous,
) -> Setup:
    def setup(d: Path) -> Handles:
        spool = Spool(d / f"spool-{sync}.db", SpoolConfig(synchronous=sync))
        return (lambda i: spool.append(make_entry(i), dest="p/l")), spool.checkpoint, spool.close

    return setup


def stock_setup(d: Path) -> Handles:
    queue = SQLiteAckQueue(str(d / "stock"), multithreading=True)
    return (lambda i: queue.put(make_entry(i))), (lambda: None), queue.close


def encode_setup(d: Path) -> Handles:
    del d
    return (lambda i: encode_entry(make_entry(i))), (lambda: None), (lambda: None)


def entry_setup(d: Path) -> Handles:
    del d
    return make_entry, (lambda: None), (lambda: None)


def bench_appends(reps: int, n: int, work: Path) -> None:
    slow = max(50, n // 10)  # stock put and FULL fsync every commit
    cases = [
        Case("build the test entry only (baseline)", n, entry_setup),
        Case("our JSON encoder only", n, encode_setup),
        Case("raw sqlite3 INSERT+commit, WAL NORMAL", n, raw_setup(encode=False)),
        Case("raw json.dumps + INSERT+commit, NORMAL", n, raw_setup(encode=True)),
        Case("Spool.append, synchronous=NORMAL", n, spool_setup(Synchronous.NORMAL)),
        Case("Spool.append, synchronous=FULL", slow, spool_setup(Synchronous.FULL)),
        Case("stock SQLiteAckQueue.put (defaults)", slow, stock_setup),
    ]
    opened = [(c, *c.setup(work)) for c in cases]
    try:
        for rep in range(reps):
            for case, op, checkpoint, _ in opened:
                base = rep * case.n
                lat = []
                for i in range(base, base + case.n):
                    t0 = time.perf_counter_ns()
                    op(i)
                    lat.append((time.perf_counter_ns() - t0) / 1000)
                checkpoint()  # the flusher's job, outside the timing
                case.medians.append(statistics.median(lat))
                case.samples += lat
    finally:
        for _, _, _, close in opened:
            close()
    print(f"\n1. append latency ({reps} interleaved repetitions; us per call)")
    print(f"   {'case':44s} {'n/rep':>6s} {'median':>8s} {'p99':>8s}")
    for case in cases:
        print(
            f"   {case.name:44s} {case.n:6d} {statistics.median(case.medians):8.2f} "
            f"{pct(case.samples, 0.99):8.2f}"
        )


def bench_batches(reps: int, work: Path, n: int = 4 * 4096) -> None:
    ours, stock = [], []
    entries = [make_entry(i) for i in range(n)]
    for rep in range(reps):
        spool = Spool(work / f"batch-{rep}.db")
        spool.append_many(entries, dest="p/l")
        spool.checkpoint("TRUNCATE")
        t0 = time.perf_counter()
        done = 0
        while (batch := spool.lease(4096, 8 << 20, lease_seconds=60)) is not None:
            done += spool.ack(batch)
        ours.append(done / (time.perf_counter() - t0))
        spool.close()
        m = n // 8  # stock is one statement + one commit (+ fsync) per record
        queue = SQLiteAckQueue(str(work / f"stock-{rep}"), multithreading=True)
        with queue._putter as conn:  # prefill directly: only get+ack is measured
            conn.executemany(
                f"INSERT INTO {queue._table_name} (data, timestamp, status) VALUES (?, ?, 0)",
                [(queue._serializer.dumps(e), time.time()) for e in entries[:m]],
            )
        queue.total = m
        t0 = time.perf_counter()
        for _ in range(m):
            item = queue.get(block=False)
            queue.ack(item)
        stock.append(m / (time.perf_counter() - t0))
        queue.close()
    print("\n2. batch throughput (records/s, median of repetitions)")
    print(f"   Spool lease(4096)+ack, entries decoded      {statistics.median(ours):12,.0f}")
    print(f"   stock SQLiteAckQueue get+ack per record     {statistics.median(stock):12,.0f}")


def bench_threads(reps: int, work: Path, threads: int = 4, n: int = 2000) -> None:
    """One shared Spool (one connection + lock) vs one Spool (connection) per thread."""
    results: dict[str, list[float]] = {"one shared Spool (ours)": [], "a Spool per thread": []}
    for rep in range(reps):
        for name, rates in results.items():
            path = work / f"threads-{rep}-{len(name)}.db"
            shared = Spool(path)
            spools = (
                [shared] * threads
                if name.startswith("one")
                else [Spool(path) for _ in range(threads)]
            )
            start = threading.Barrier(threads + 1)

            def worker(spool: Spool, k: int, start: threading.Barrier = start) -> None:
                start.wait()
                for i in range(n):
                    spool.append(make_entry(k * n + i), dest="p/l")

            pool = [threading.Thread(target=worker, args=(sp, k)) for k, sp in enumerate(spools)]
            t0 = start_together(pool, start)
            rates.append(threads * n / (time.perf_counter() - t0))
            for sp in set(spools):
                sp.close()
    print(f"\n1b. {threads} threads appending at once (appends/s, median of {reps})")
    for name, rates in results.items():
        print(f"   {name:44s} {statistics.median(rates):12,.0f}")


RSS_CHILD = """
import os, sys, time
from yai_spool.spool import Spool, SpoolConfig
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
base = rss()
t0 = time.perf_counter()
conf = SpoolConfig(integrity_check=sys.argv[2], max_records=10**8, max_bytes=1 << 40)
spool = Spool(sys.argv[1], conf)
opened = time.perf_counter() - t0
stats = spool.stats()
batch = spool.lease(4096, 8 << 20, lease_seconds=60)
spool.release(batch)
print(base, rss(), stats.ready_records, round(opened, 3))
"""


def child(code: str, *args: str) -> list[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        capture_output=True,
        check=True,
    )
    return out.stdout.decode().split()


def bench_backlog(n: int, work: Path) -> None:
    path = work / "backlog.db"
    conf = SpoolConfig(max_records=10**8, max_bytes=1 << 40, integrity_check="none")
    spool = Spool(path, conf)
    t0 = time.perf_counter()
    chunk = 10_000
    for start in range(0, n, chunk):
        spool.append_many([make_entry(i) for i in range(start, min(n, start + chunk))], dest="p/l")
        spool.checkpoint()
    fill = time.perf_counter() - t0
    spool.checkpoint("TRUNCATE")
    spool.close()
    size = path.stat().st_size
    base, rss, ready, open_none = child(RSS_CHILD, str(path), "none")
    _, rss_q, _, open_quick = child(RSS_CHILD, str(path), "quick")
    print(
        f"\n3. memory with {int(ready):,} records held ({size / 2**20:,.0f} MiB file, "
        f"filled in {fill:.1f} s "
        f"with append_many(10k))"
    )
    print(
        f"   RSS of a fresh process: {base} MiB before open, {rss} MiB after open+stats+lease "
        f"(open {float(open_none) * 1000:.0f} ms); with integrity_check='quick': {rss_q} MiB, "
        f"open {float(open_quick) * 1000:.0f} ms"
    )
    spool = Spool(path, conf)
    dead = Spool(path, conf)
    dead.lease(4096, 8 << 20, lease_seconds=3600)  # a flusher that will "die" holding a lease
    dead.close()
    t0 = time.perf_counter()
    assert spool.acquire_flusher()
    recover = time.perf_counter() - t0
    rates = []
    done = 0
    # First half as the flusher sees it; second half with JSON decoding stubbed out, to show
    # how the time splits between SQLite and json.loads.
    for decoded in (True, False):
        if not decoded:
            core.decode_entries = list  # type: ignore[assignment]
        goal, t0, moved = (n // 2 if decoded else n), time.perf_counter(), 0
        while done < goal and (batch := spool.lease(4096, 8 << 20, lease_seconds=60)) is not None:
            moved += spool.ack(batch)
            done += len(batch)
            if done % 100_000 < 4096:
                spool.checkpoint()
        rates.append(moved / (time.perf_counter() - t0))
    core.decode_entries = decode_entries
    spool.checkpoint("TRUNCATE")
    spool.close()
    print(f"\n4. drain of the {done:,}-record backlog via lease(4096, 8 MiB) + ack only")
    print(
        f"   {rates[0]:,.0f} records/s with entries decoded (the flusher's view); "
        f"{rates[1]:,.0f} records/s with decoding stubbed out (SQLite share)"
    )
    print(
        f"   acquire_flusher() with one dead flusher's lease: {recover * 1000:.0f} ms "
        "(includes the full-table safety scan)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--appends", type=int, default=2000, help="appends per repetition per case")
    parser.add_argument("--backlog", type=int, default=1_000_000)
    args = parser.parse_args()
    print(
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{platform.machine()}, "
        f"{os.cpu_count()} CPUs; entry {len(encode_entry(make_entry(0))[0])} bytes of JSON"
    )
    with tempfile.TemporaryDirectory(prefix="bench-spool-") as tmp:
        work = Path(tmp)
        bench_appends(args.reps, args.appends, work)
        bench_threads(max(3, args.reps // 2), work)
        bench_batches(max(5, args.reps // 2 + 2), work)
        bench_backlog(args.backlog, work)


if __name__ == "__main__":
    main()
