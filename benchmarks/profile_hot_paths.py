"""cProfile of the two hot paths whose issue-8 targets are missed: ``emit`` and the drain loop.

Owns: the profiles that benchmarks/README.md cites for every missed target. Each section prints
the functions with the most *own* time (``tottime``) per record, so the floor that stops a target
is named: for ``emit`` the sqlite3 ``execute`` + ``commit`` pair next to the Python work of
mapping and encoding; for the drain the lease/ack statements and the HTTP send.

Sections:

- ``sqlite3 floor``: the raw per-record INSERT + COMMIT with the spool's pragmas (what
  ``bench_emit.py`` calls the floor), so its ``execute``/``commit`` cost is read off the same run.
- ``SpoolHandler.handle`` with ``flusher="none"`` (map + encode + one durable commit).
- ``drain loop``: lease -> join stored logs -> lz4 + sign + POST -> ack, one batch at a time,
  from a pre-filled spool to the emulator in a subprocess (its cost is not in this profile).

cProfile adds a fixed cost per Python call, so Python-heavy rows are inflated against C calls;
read the ranking and the C-call share, and take absolute µs from the benchmark tables.

Run: ``python benchmarks/profile_hot_paths.py [--records 20000] [--backlog 100000] [--top 12]``
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import sys
from collections.abc import Callable
from pathlib import Path

import benchlib
from bench_drain import BATCH, DEST, LOGSTORE, MAX_BYTES, SPOOL_CONFIG, fill
from benchhandlers import INSERT_LOG, floor_connection
from benchlib import AK, PROJECT, SK, EmulatorProcess

from yai_spool.handlers.durable import SpoolHandler
from yai_spool.sls.client import PutLogsClient
from yai_spool.sls.encoding import join_logs
from yai_spool.spool import Spool
from yai_spool.spool.destination import decode_dest


def profile(loop: Callable[[], int]) -> tuple[pstats.Stats, int]:
    """Profile ``loop`` only: building and closing what it uses stay outside the profile."""
    profiler = cProfile.Profile()
    profiler.enable()
    records = loop()
    profiler.disable()
    return pstats.Stats(profiler), records


def report(title: str, stats: pstats.Stats, records: int, top: int) -> str:
    """Markdown table: the ``top`` functions by own time, in µs per record."""
    raw = stats.stats  # type: ignore[attr-defined]  # {(file, line, fn): (cc, nc, tt, ct, callers)}
    total = sum(v[2] for v in raw.values())
    rows = []
    for (file, line, fn), (_cc, calls, tottime, cumtime, _callers) in sorted(
        raw.items(), key=lambda kv: kv[1][2], reverse=True
    )[:top]:
        where = fn if file == "~" else f"{Path(file).name}:{line} {fn}"
        rows.append([
            where,
            f"{calls / records:.2f}",
            f"{tottime / records * 1e6:.2f}",
            f"{tottime / total * 100:.0f}%",
            f"{cumtime / records * 1e6:.2f}",
        ])  # fmt: skip
    per_record = total / records * 1e6
    head = f"### {title}: {records:,} records, {per_record:.1f} µs/record under cProfile\n\n"
    table = benchlib.table(
        ["function (own time first)", "calls/rec", "own µs/rec", "share", "cum µs/rec"], rows
    )
    return head + table


WARMUP = 200  # first calls compile regexes and statements: not the steady state


def profile_warm(
    loop: Callable[[list[logging.LogRecord]], int],
    records: list[logging.LogRecord],
    close: Callable[[], object],
) -> tuple[pstats.Stats, int]:
    """Run ``loop`` over the first ``WARMUP`` records, profile it over the rest, then close."""
    loop(records[:WARMUP])
    try:
        return profile(lambda: loop(records[WARMUP:]))
    finally:
        close()


def sqlite_floor(directory: Path, records: list[logging.LogRecord]) -> tuple[pstats.Stats, int]:
    conn = floor_connection(directory / "floor.db", check_same_thread=True)
    formatter = logging.Formatter()
    cursor = conn.cursor()

    def insert(batch: list[logging.LogRecord]) -> int:
        for record in batch:
            cursor.execute(INSERT_LOG, (formatter.format(record), record.created))
        return len(batch)

    return profile_warm(insert, records, conn.close)


def spool_emit(directory: Path, records: list[logging.LogRecord]) -> tuple[pstats.Stats, int]:
    handler = SpoolHandler(
        project=PROJECT, logstore="prof", spool_path=directory / "emit.spool", flusher="none"
    )

    def handle(batch: list[logging.LogRecord]) -> int:
        for record in batch:
            handler.handle(record)
        return len(batch)

    return profile_warm(handle, records, handler.close)


def drain_loop(path: Path, url: str) -> tuple[pstats.Stats, int]:
    dest = decode_dest(DEST)
    client = PutLogsClient(url, access_key_id=AK, access_key_secret=SK)

    def drain() -> int:
        n = 0
        while (batch := spool.lease(BATCH, MAX_BYTES, lease_seconds=300)) is not None:
            body = join_logs(batch.logs, dest.topic, dest.source, dest.tags)
            client.put_raw(PROJECT, LOGSTORE, body)
            spool.ack(batch)
            n += len(batch)
        return n

    with Spool(path, SPOOL_CONFIG) as spool:
        try:
            return profile(drain)
        finally:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=20_000, help="records per emit profile")
    parser.add_argument("--backlog", type=int, default=100_000, help="records drained")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    logging.getLogger("yai_spool").propagate = False
    print(benchlib.env_header("Profiles of the hot paths (cProfile)"))
    with benchlib.scratch_dir("yai-prof-") as directory:
        records = benchlib.make_records(args.records, seed=3)
        for title, scenario in (
            ("sqlite3 floor (INSERT + COMMIT per record)", sqlite_floor),
            ("SpoolHandler.handle, flusher=none", spool_emit),
        ):
            stats, n = scenario(directory, records)
            print(report(title, stats, n, args.top))
            print()
        backlog = directory / "backlog.spool"
        fill(backlog, args.backlog)
        with EmulatorProcess(directory) as emu:
            stats, n = drain_loop(backlog, emu.url)
        print(report(f"drain loop to the emulator (batch {BATCH}, lz4, V1)", stats, n, args.top))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
