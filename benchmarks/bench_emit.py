"""Cost of one ``handler.handle(record)`` call on the application thread, next to baselines.

Owns: the per-call latency benchmark of ``SpoolHandler`` (issue targets: median <= 2.0x
QueueHandler+QueueListener, p99 <= 100 µs, p99.9 <= 1 ms also while draining, >= 2.5x cheaper
than the official QueuedLogHandler, >= 6x cheaper than stock persist-queue ``put``).

Contestants, all driven through ``logging.Handler.handle`` (filters + handler lock + emit) with
fresh "typical" records (a message with two %-args and two ``extra=`` fields), built outside
the timed region:

- ``QueueHandler+QueueListener``: stdlib, the listener thread feeding a handler that drops
  everything. THE baseline of the ratio column.
- ``SpoolHandler none``: ``flusher="none"`` (map + one durable SQLite commit, nothing ships).
- ``SpoolHandler thread``: the in-process flusher thread ships to the emulator concurrently.
- ``SpoolHandler thread, draining backlog``: the same while the flusher drains a big backlog
  (pre-spooled with ``Spool.append_many``) into the emulator the whole time.
- ``SpoolHandler none + drainer process``: the same backlog drained by a ``ThreadFlusher``
  in ANOTHER process (the ``yai-spool run`` deployment): shows what the GIL costs the row above.
- ``aliyun QueuedLogHandler``: the official handler, shipping to the emulator through
  ``HTTP_PROXY`` with the fake endpoint ``sls.example.test`` (as in
  tests/emulator/test_official_clients.py).
- ``persist-queue put (stock)``: ``SQLiteAckQueue(path).put(self.format(record))`` with the
  library's defaults (WAL, Python's default ``synchronous=FULL``, pickle).
- ``sqlite3 insert+commit``: one autocommit ``INSERT`` of ``self.format(record)`` per record
  with the spool's own pragmas (WAL, ``synchronous=NORMAL``, ``wal_autocheckpoint=0``): the
  floor of any design that commits every record before ``emit`` returns.

Method: each repetition builds every contestant afresh, warms it up, then times each call with
``perf_counter_ns``; contestants run in a rotated order in every repetition (interleaved) so
machine drift hits all alike. Median = median of the per-repetition medians; p99/p99.9/max are
over all samples of all repetitions. The emulator runs in a subprocess (own GIL). Nothing here
is a test: no assertion on time.

Run: ``python benchmarks/bench_emit.py [--quick] [--reps 5] [--calls 20000] [--backlog 200000]``
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import benchlib
from benchhandlers import DropHandler, SqliteFloor, floor_connection
from benchlib import (
    AK,
    PROJECT,
    SK,
    EmulatorProcess,
    fmt_us,
    make_record,
    make_records,
    percentile,
    ratio,
)

from yai_spool.handlers.durable import SpoolHandler
from yai_spool.handlers.mapping import RecordMapper
from yai_spool.spool import Spool, SpoolConfig
from yai_spool.spool.destination import encode_dest

SOURCE = "bench-host"
BASELINE = "QueueHandler+QueueListener"
FLOOR = "sqlite3 insert+commit (spool pragmas)"


class _PersistQueueHandler(logging.Handler):
    """What a user writes on top of stock persist-queue: format, then ``put`` (pickled)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        from persistqueue import SQLiteAckQueue

        self.queue = SQLiteAckQueue(str(path), multithreading=True)

    def emit(self, record: logging.LogRecord) -> None:
        self.queue.put(self.format(record))

    def close(self) -> None:
        self.queue.close()  # type: ignore[no-untyped-call]
        super().close()


@dataclass
class Ctx:
    """What the contestants' factories need; ``seq`` makes every logstore unique."""

    directory: Path
    emulator: EmulatorProcess
    backlog: int
    seq: int = 0

    def next_logstore(self) -> str:
        self.seq += 1
        return f"emit-{self.seq}"


@dataclass
class Built:
    handler: logging.Handler
    close: Callable[[], None]
    note: Callable[[], str] = lambda: ""


def _spool_handler(ctx: Ctx, *, thread: bool, logstore: str, **kw: object) -> SpoolHandler:
    path = ctx.directory / f"{logstore}.spool"
    options: dict[str, object] = {
        "project": PROJECT,
        "logstore": logstore,
        "spool_path": path,
        "source": SOURCE,
        "flusher": "thread" if thread else "none",
    }
    if thread:
        options |= {
            "endpoint": ctx.emulator.url,
            "access_key_id": AK,
            "access_key_secret": SK,
            "close_timeout": 30.0,
        }
    options |= kw
    return SpoolHandler(**options)  # type: ignore[arg-type]


def _prefill(ctx: Ctx, logstore: str, n: int) -> Path:
    """Spool ``n`` typical entries for ``logstore`` in big transactions (not timed)."""
    path = ctx.directory / f"{logstore}.spool"
    mapper = RecordMapper(source=SOURCE)
    entries = [mapper.map(r) for r in make_records(1000, seed=7)]
    for e in entries:  # the handler keeps topic/source/tags in the destination key
        for k in ("topic", "source", "tags"):
            e.pop(k)  # type: ignore[misc]
    dest = encode_dest(PROJECT, logstore, "", SOURCE, ())
    with Spool(path, SpoolConfig(integrity_check="none")) as spool:
        done = 0
        while done < n:
            chunk = entries[: min(1000, n - done)]
            spool.append_many(chunk, dest=dest)
            done += len(chunk)
    return path


def build_queue(ctx: Ctx) -> Built:
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(q, DropHandler())
    listener.start()
    return Built(logging.handlers.QueueHandler(q), listener.stop)


def build_spool_none(ctx: Ctx) -> Built:
    handler = _spool_handler(ctx, thread=False, logstore=ctx.next_logstore())
    return Built(handler, handler.close)


def build_spool_thread(ctx: Ctx) -> Built:
    logstore = ctx.next_logstore()
    before = ctx.emulator.accepted()
    handler = _spool_handler(ctx, thread=True, logstore=logstore)

    def note() -> str:
        return f"{ctx.emulator.accepted() - before} delivered while measuring"

    return Built(handler, handler.close, note)


def build_spool_draining(ctx: Ctx) -> Built:
    logstore = ctx.next_logstore()
    _prefill(ctx, logstore, ctx.backlog)
    handler = _spool_handler(ctx, thread=True, logstore=logstore, close_timeout=0.5)
    before = ctx.emulator.accepted()

    def note() -> str:
        shipped = ctx.emulator.accepted() - before
        return f"backlog {ctx.backlog}: {shipped} shipped while measuring"

    return Built(handler, handler.close, note)


def build_spool_external_drainer(ctx: Ctx) -> Built:
    logstore = ctx.next_logstore()
    path = _prefill(ctx, logstore, ctx.backlog)
    handler = _spool_handler(ctx, thread=False, logstore=logstore)
    before = ctx.emulator.accepted()
    drainer = benchlib.Drainer(path, ctx.emulator.url)

    def close() -> None:
        drainer.stop()
        handler.close()

    def note() -> str:
        shipped = ctx.emulator.accepted() - before
        return f"backlog {ctx.backlog}: {shipped} shipped while measuring"

    return Built(handler, close, note)


def build_official(ctx: Ctx) -> Built:
    from aliyun.log import QueuedLogHandler

    handler = QueuedLogHandler(
        "sls.example.test", AK, SK, PROJECT, ctx.next_logstore(), close_wait=30
    )

    def close() -> None:
        handler.stop()
        handler.close()

    return Built(handler, close)


def build_persist_queue(ctx: Ctx) -> Built:
    directory = ctx.directory / f"pq-{ctx.next_logstore()}"
    handler = _PersistQueueHandler(directory)
    return Built(handler, handler.close)


def build_sqlite(ctx: Ctx) -> Built:
    handler = SqliteFloor(ctx.directory / f"{ctx.next_logstore()}.sqlite")
    return Built(handler, handler.close)


CONTESTANTS: dict[str, Callable[[Ctx], Built]] = {
    BASELINE: build_queue,
    "SpoolHandler none": build_spool_none,
    "SpoolHandler thread": build_spool_thread,
    "SpoolHandler thread, draining backlog": build_spool_draining,
    "SpoolHandler none + drainer process": build_spool_external_drainer,
    "aliyun QueuedLogHandler": build_official,
    "persist-queue put (stock)": build_persist_queue,
    FLOOR: build_sqlite,
}


def time_calls(
    handle: Callable[[logging.LogRecord], object], start: int, calls: int, budget: float
) -> list[int]:
    """ns per call; stops early once ``budget`` seconds are spent (slow contestants).

    Each record is built right before its call, outside the timer (see ``make_record``).
    """
    clock = time.perf_counter_ns
    out: list[int] = []
    add = out.append
    deadline = clock() + int(budget * 1e9)
    for i in range(start, start + calls):
        record = make_record(i)
        t0 = clock()
        handle(record)
        add(clock() - t0)
        if i & 255 == 255 and t0 > deadline:
            break
    return out


def timer_overhead() -> float:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20000):
        t0 = clock()
        samples.append(clock() - t0)
    return statistics.median(samples) / 1000


def emit_breakdown(directory: Path, reps: int, calls: int) -> list[list[str]]:
    """µs per call of each step of ``SpoolHandler.handle`` (flusher="none"), interleaved.

    Each step is timed over a block of calls (block mean, no per-call timer), on fresh records
    for the steps that read a record; the table shows the median over repetitions.
    """
    handler = SpoolHandler(
        project=PROJECT,
        logstore="breakdown",
        spool_path=directory / "breakdown.spool",
        source=SOURCE,
        flusher="none",
    )
    mapper = handler._mapper
    spool = handler.spool
    store = spool._store
    assert store is not None
    dest = encode_dest(PROJECT, "breakdown", "", SOURCE, ())
    data = mapper.encode(make_records(1)[0]).data
    row = (data, 1.0, dest, len(data), 1_700_000_000, "INFO", "app.checkout")
    conn = floor_connection(  # the spool's pragmas: no checkpoint in the insert
        directory / "breakdown-raw.sqlite",
        table="CREATE TABLE q (id INTEGER PRIMARY KEY, data BLOB, ts REAL, dest TEXT, n INT)",
        check_same_thread=True,
    )
    cursor = conn.cursor()
    insert = "INSERT INTO q (data, ts, dest, n) VALUES (?, ?, ?, ?)"
    formatter = logging.Formatter()

    def per_record(fn: Callable[[logging.LogRecord], object]) -> Callable[[], float]:
        def run() -> float:
            clock = time.perf_counter_ns
            spent = 0
            for i in range(calls):
                record = make_record(i)  # hot, as in logger.info; built outside the timer
                t0 = clock()
                fn(record)
                spent += clock() - t0
            return spent / calls / 1000

        return run

    def repeated(fn: Callable[[], object]) -> Callable[[], float]:
        def run() -> float:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            return (time.perf_counter() - t0) / calls * 1e6

        return run

    steps: dict[str, Callable[[], float]] = {
        "logging.Formatter.format (what the floor renders)": per_record(formatter.format),
        "RecordMapper.encode (map + protobuf, one pass)": per_record(mapper.encode),
        "SpoolQueue.insert (the SQL, autocommit)": repeated(lambda: store.insert(row)),
        "raw sqlite3 INSERT autocommit, same bytes": repeated(
            lambda: cursor.execute(insert, row[:4])
        ),
        "Spool.append_log (checks + insert)": repeated(
            lambda: spool.append_log(data, dest=dest, log_time=1, level="INFO", logger="x")
        ),
        "SpoolHandler.emit (encode + append + glue)": per_record(handler.emit),
        "SpoolHandler.handle (filters + emit)": per_record(handler.handle),
    }
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(reps):
        for name, run in steps.items():
            times[name].append(run())
    handler.close()
    conn.close()
    return [[name, f"{statistics.median(v):.2f}", f"{min(v):.2f}"] for name, v in times.items()]


def main() -> None:
    parser = benchlib.quick_parser(__doc__)
    parser.add_argument("--calls", type=int, default=None, help="timed calls per repetition")
    parser.add_argument("--backlog", type=int, default=None, help="records pre-spooled")
    parser.add_argument("--budget", type=float, default=None, help="seconds per contestant/rep")
    parser.add_argument("--only", default="", help="comma-separated contestant name prefixes")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    calls = args.calls or (2000 if args.quick else 20000)
    backlog = args.backlog or (20_000 if args.quick else 200_000)
    budget = args.budget or (0.6 if args.quick else 4.0)
    names = [
        n
        for n in CONTESTANTS
        if not args.only or n == BASELINE or any(n.startswith(p) for p in args.only.split(","))
    ]

    logging.getLogger("yai_spool").propagate = False
    overhead = timer_overhead()
    samples: dict[str, list[int]] = {n: [] for n in names}
    medians: dict[str, list[float]] = {n: [] for n in names}
    notes: dict[str, list[str]] = {n: [] for n in names}
    started = time.monotonic()
    with (
        benchlib.scratch_dir("yai-bench-emit-") as directory,
        EmulatorProcess(directory) as emulator,
    ):
        benchlib.proxy_to(emulator.url)  # the official handler reaches the emulator so
        ctx = Ctx(directory, emulator, backlog)
        for rep in range(reps):
            for name in benchlib.rotated(names, rep):
                built = CONTESTANTS[name](ctx)
                try:
                    for i in range(300):  # warm-up
                        built.handler.handle(make_record(10_000_000 + i))
                    got = time_calls(built.handler.handle, rep * calls, calls, budget)
                    text = built.note()
                finally:
                    built.close()
                samples[name] += got
                medians[name].append(statistics.median(got) / 1000)
                if text:
                    notes[name].append(text)
                print(
                    f"  rep {rep + 1}/{reps} {name}: {len(got)} calls, "
                    f"median {statistics.median(got) / 1000:.1f} µs",
                    file=sys.stderr,
                )
        breakdown = emit_breakdown(directory, reps=3 if args.quick else 7, calls=calls // 4)
    elapsed = time.monotonic() - started

    print(
        benchlib.env_header(
            "bench_emit: cost of one handler.handle(record) on the application thread",
            {
                "repetitions": f"{reps} (interleaved, rotated order), up to {calls} timed calls "
                f"per contestant per repetition, {budget:g} s budget each",
                "backlog for the draining rows": f"{backlog} records pre-spooled",
                "timer overhead (included in every sample)": f"{overhead:.2f} µs",
                "wall time": f"{elapsed:.0f} s",
            },
        )
    )
    base = statistics.median(medians[BASELINE])
    rows = []
    for name in names:
        ordered = sorted(samples[name])
        med = statistics.median(medians[name])
        rows.append(
            [
                name,
                len(ordered),
                fmt_us(med),
                ratio(med, base),
                f"{min(medians[name]):.1f}-{max(medians[name]):.1f}",
                fmt_us(percentile(ordered, 99) / 1000),
                fmt_us(percentile(ordered, 99.9) / 1000),
                fmt_us(ordered[-1] / 1000),
            ]
        )
    print(
        benchlib.table(
            [
                "contestant",
                "calls",
                "median",
                "ratio vs baseline",
                "rep medians µs",
                "p99",
                "p99.9",
                "max",
            ],
            rows,
        )
    )
    print(f"\nbaseline: {BASELINE} (median {base:.1f} µs)")
    for name in names:
        if notes[name]:
            print(f"- {name}: " + "; ".join(notes[name]))
    _print_targets(names, medians, samples, base)
    print("\n### Where SpoolHandler.handle spends its time (flusher=none, in-process)\n")
    print(benchlib.table(["step", "median µs/call", "best µs/call"], breakdown))


def _print_targets(
    names: list[str], medians: dict[str, list[float]], samples: dict[str, list[int]], base: float
) -> None:
    def med(n: str) -> float:
        return statistics.median(medians[n])

    def pct(n: str, q: float) -> float:
        return percentile(sorted(samples[n]), q) / 1000

    ours = "SpoolHandler none"
    checks: list[tuple[str, bool, str]] = []
    if ours in names and FLOOR in names:
        paired = statistics.median(
            a / b for a, b in zip(medians[ours], medians[FLOOR], strict=True)
        )
        checks.append(
            (f"median <= 1.10x {FLOOR} (paired per repetition)", paired <= 1.10, f"{paired:.2f}x")
        )
    if ours in names:
        checks.append(
            (
                "median <= 2.0x QueueHandler+QueueListener",
                med(ours) <= 2 * base,
                ratio(med(ours), base),
            )
        )
    for name in names:
        if name.startswith("SpoolHandler"):
            checks.append((f"p99 <= 100 µs ({name})", pct(name, 99) <= 100, fmt_us(pct(name, 99))))
            checks.append(
                (f"p99.9 <= 1 ms ({name})", pct(name, 99.9) <= 1000, fmt_us(pct(name, 99.9)))
            )
    for other, factor in (("aliyun QueuedLogHandler", 2.5), ("persist-queue put (stock)", 6.0)):
        if ours in names and other in names:
            checks.append(
                (
                    f">= {factor}x cheaper than {other} (median)",
                    med(other) >= factor * med(ours),
                    f"{med(other) / med(ours):.2f}x",
                )
            )
    print()
    print(
        benchlib.table(
            ["target", "met", "measured"],
            [[t, "yes" if ok else "NO", m] for t, ok, m in checks],
        )
    )


if __name__ == "__main__":
    main()
