"""Drain a big backlog: how fast does a flusher empty a 1,000,000-record spool into SLS?

Owns: the drain benchmark (issue targets: a 1,000,000-record backlog drains at >= 100,000
records/s; RSS < 100 MB while holding it) and the per-stage profile of the drain path.

1. Fill: one spool file gets N typical entries (the mapper's output for a "typical" record, each
   with its own message and order id) through ``Spool.append_many`` in 10,000-entry
   transactions; the file is then copied for every consumer, so each starts from the same
   backlog.
2. Drain table. Each row is a FRESH subprocess (own peak RSS) draining its copy into the emulator
   (another subprocess, storing to a file):

   - ``sender floor``: ``PutLogsClient.put_raw`` of pre-encoded 4096-log bodies, N logs in total:
     client + emulator alone, nothing read from a spool. THE baseline of the ratio column.
   - ``spool floor``: ``lease`` + ``ack`` of every batch, nothing encoded or sent.
   - ``ThreadFlusher``: the real thing, default ``FlusherConfig`` (4096 records / 4 MiB,
     lz4, V1), until the emulator holds N.
   - ``hold 1M + emit``: opens a ``SpoolHandler(flusher="none")`` on the full backlog and logs
     1,000 records: the RSS an application pays for holding the backlog.

3. Stage table (in this process, a smaller copy): µs per record of each step of ShipCycle's
   drain loop (``lease`` = SQL, stored JSON texts only; ``encode`` = ``encode_entries`` over the
   texts decoded one at a time; lz4 + sign + HTTP; ``ack``), and an A/B of three ways to turn
   leased JSON rows into a PutLogs body: the former loop (decode the batch, build ``Log``
   objects, ``encode_log_group``), ``encoding.encode_entries`` over the decoded batch, and
   streamed from the JSON texts (each entry decoded, encoded and dropped before the next: no
   batch of live objects for the cyclic GC to walk). The three are checked to be identical.

Run: ``python benchmarks/bench_drain.py [--quick] [--records 1000000]``. Nothing here asserts
on time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import benchlib
from benchlib import AK, PROJECT, SK, EmulatorProcess, ratio

from yai_spool.handlers.mapping import RecordMapper
from yai_spool.spool import Spool, SpoolConfig
from yai_spool.spool.destination import decode_dest, encode_dest

LOGSTORE = "drain"
SOURCE = "bench-host"
DEST = encode_dest(PROJECT, LOGSTORE, "", SOURCE, ())
BATCH = 4096
MAX_BYTES = 4 * 1024 * 1024
SPOOL_CONFIG = SpoolConfig(integrity_check="none", max_records=2_000_000, max_bytes=2**31)
BASELINE = "sender floor (pre-encoded bodies)"


def _entries(start: int, count: int, template: dict[str, Any]) -> list[dict[str, Any]]:
    """``count`` typical entries with unique message/order_id (cheap variations of a mapped one)."""
    out = []
    contents = template["contents"]
    for i in range(start, start + count):
        c = [list(p) for p in contents]
        c[0][1] = f"user user-{i % 5000} paid {i % 997} EUR"
        c[-2][1] = f"o-{i}"
        out.append({"time": template["time"], "time_ns": (i * 7919) % 1_000_000_000, "contents": c})
    return out


def _template() -> dict[str, Any]:
    entry = dict(RecordMapper().map(benchlib.make_records(1)[0]))
    for key in ("topic", "source", "tags"):
        entry.pop(key)
    assert entry["contents"][-2][0] == "order_id", entry["contents"]
    return entry


def fill(path: Path, n: int) -> float:
    """Spool ``n`` entries; returns seconds taken."""
    template = _template()
    start = time.perf_counter()
    with Spool(path, SPOOL_CONFIG) as spool:
        done = 0
        while done < n:
            k = min(10_000, n - done)
            stored = spool.append_many(_entries(done, k, template), dest=DEST)
            assert stored == k, (stored, k)
            done += k
        spool.checkpoint("TRUNCATE")
    return time.perf_counter() - start


def copy_spool(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


# --------------------------------------------------------------------------- child runs


def _usage() -> dict[str, float]:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_mb": ru.ru_maxrss / 1024}


def child_flusher(path: str, url: str, n: int, in_flight: int, sink: str) -> dict[str, Any]:
    """The real ThreadFlusher until the server holds all ``n`` records.

    Progress is read from the server (accepted logs, or the null sink's request count), never
    from the spool: polling the spool would take its lock beside the flusher.
    """
    from yai_spool.shipping.flusher import FlusherConfig, ThreadFlusher
    from yai_spool.sls.client import PutLogsClient

    server = benchlib.EmulatorClient(url)
    before = server.stats()["requests" if sink == "sink" else "accepted_logs"]
    expect = before + (-(-n // BATCH) if sink == "sink" else n)
    key = "requests" if sink == "sink" else "accepted_logs"
    spool = Spool(path, SPOOL_CONFIG)
    held_rss = benchlib.rss_mb()
    flusher = ThreadFlusher(
        spool,
        PutLogsClient(url, access_key_id=AK, access_key_secret=SK),
        FlusherConfig(max_in_flight=in_flight),
    )
    c0 = _usage()["cpu_s"]
    t0 = time.perf_counter()
    flusher.start()
    flusher.wake()
    deadline = time.monotonic() + 900
    while server.stats()[key] < expect and time.monotonic() < deadline:
        time.sleep(0.02)  # another process's progress: nothing to wait on
    elapsed = time.perf_counter() - t0
    usage = _usage()
    flusher.stop(10.0)  # settles the last answers
    ok = spool.stats().delivered == n
    spool.close()
    return {
        "seconds": elapsed,
        "cpu_s": usage["cpu_s"] - c0,
        "maxrss_mb": usage["maxrss_mb"],
        "held_rss_mb": held_rss,
        "ok": ok,
    }


def child_spool_floor(path: str, n: int) -> dict[str, Any]:
    spool = Spool(path, SPOOL_CONFIG)
    c0 = _usage()["cpu_s"]
    t0 = time.perf_counter()
    done = 0
    while True:
        batch = spool.lease(BATCH, MAX_BYTES, lease_seconds=300)
        if batch is None:
            break
        done += spool.ack(batch)
    elapsed = time.perf_counter() - t0
    usage = _usage()
    spool.close()
    return {"seconds": elapsed, "cpu_s": usage["cpu_s"] - c0, "maxrss_mb": usage["maxrss_mb"],
            "ok": done == n}  # fmt: skip


def child_sender_floor(url: str, n: int, expect: int) -> dict[str, Any]:
    from yai_spool.sls.client import PutLogsClient
    from yai_spool.sls.encoding import encode_entries

    emu = benchlib.EmulatorClient(url)
    template = _template()
    bodies = [encode_entries(_entries(i * BATCH, BATCH, template), "", SOURCE) for i in range(4)]
    client = PutLogsClient(url, access_key_id=AK, access_key_secret=SK)
    c0 = _usage()["cpu_s"]
    t0 = time.perf_counter()
    sent = 0
    i = 0
    while sent < n:
        raw = bodies[i % len(bodies)]
        if n - sent < BATCH:  # the last, partial batch
            raw = encode_entries(_entries(0, n - sent, template), "", SOURCE)
        client.put_raw(PROJECT, LOGSTORE, raw)
        sent += min(BATCH, n - sent)
        i += 1
    ok = emu.wait_for(expect, timeout=60)
    elapsed = time.perf_counter() - t0
    usage = _usage()
    client.close()
    return {"seconds": elapsed, "cpu_s": usage["cpu_s"] - c0, "maxrss_mb": usage["maxrss_mb"],
            "ok": ok}  # fmt: skip


def child_hold(path: str) -> dict[str, Any]:
    from yai_spool.handlers.durable import SpoolHandler

    t0 = time.perf_counter()
    handler = SpoolHandler(
        project=PROJECT,
        logstore=LOGSTORE,
        spool_path=path,
        flusher="none",
        source=SOURCE,
        max_spool_records=2_000_000,
        max_spool_bytes=2**31,
    )
    opened = time.perf_counter() - t0
    logger = logging.getLogger("app.hold")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    for i in range(1000):
        logger.info("user %s paid %d EUR", "u", i, extra={"order_id": f"o-{i}", "ms": 1.5})
    stats = handler.spool.stats()
    rss = benchlib.rss_mb()
    handler.close()
    held = stats.ready_records + stats.leased_records
    return {"seconds": opened, "cpu_s": 0.0, "maxrss_mb": _usage()["maxrss_mb"], "rss_mb": rss,
            "held": held, "ok": True}  # fmt: skip


# --------------------------------------------------------------------------- stage profile


def stage_profile(path: Path, url: str) -> tuple[list[list[str]], int]:
    """Per-stage µs/record of one batch at a time through the drain loop (no pipelining)."""
    from yai_spool.sls.client import PutLogsClient
    from yai_spool.sls.encoding import join_logs

    dest = decode_dest(DEST)
    client = PutLogsClient(url, access_key_id=AK, access_key_secret=SK)
    stages: dict[str, float] = dict.fromkeys(
        ("lease (mark rows + read stored logs)", "body (join_logs)", "send (lz4 + sign + HTTP)",
         "ack (delete + counters)"),
        0.0,
    )  # fmt: skip
    names = list(stages)
    clock = time.perf_counter
    n = 0
    with Spool(path, SPOOL_CONFIG) as spool:
        while True:
            t = clock()
            batch = spool.lease(BATCH, MAX_BYTES, lease_seconds=300)
            stages[names[0]] += clock() - t
            if batch is None:
                break
            t = clock()  # what ShipCycle does: the stored logs plus the trailer
            raw = join_logs(batch.logs, dest.topic, dest.source, dest.tags)
            stages[names[1]] += clock() - t
            t = clock()
            client.put_raw(PROJECT, LOGSTORE, raw)
            stages[names[2]] += clock() - t
            t = clock()
            spool.ack(batch)
            stages[names[3]] += clock() - t
            n += len(batch)
    client.close()
    rows = [[name, f"{sec / n * 1e6:.2f}"] for name, sec in stages.items()]
    total = sum(stages.values())
    rows.append(["total (one batch at a time)", f"{total / n * 1e6:.2f}"])
    return rows, n


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="< 30 s smoke run")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--stage-records", type=int, default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "flusher":
            out = child_flusher(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        elif kind == "spool":
            out = child_spool_floor(rest[0], int(rest[1]))
        elif kind == "sender":
            out = child_sender_floor(rest[0], int(rest[1]), int(rest[2]))
        else:
            out = child_hold(rest[0])
        print(json.dumps(out))
        return

    n = args.records or (30_000 if args.quick else 1_000_000)
    stage_n = args.stage_records or (12_288 if args.quick else 102_400)
    logging.getLogger("yai_spool").propagate = False
    started = time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    with (
        benchlib.scratch_dir("yai-bench-drain-") as directory,
        EmulatorProcess(directory) as emu,
        benchlib.NullSink() as sink,
    ):
        base = directory / "base.spool"
        fill_s = fill(base, n)
        file_mb = base.stat().st_size / 2**20
        print(f"  filled {n} records in {fill_s:.1f} s ({file_mb:.0f} MB)", file=sys.stderr)

        def run(name: str, argv: list[str], spool_copy: bool, server: Any = emu) -> None:
            path = directory / f"{len(results)}.spool"
            if spool_copy:
                copy_spool(base, path)
            before = emu.accepted()
            cpu0 = server.cpu()
            argv = [a.replace("{path}", str(path)).replace("{expect}", str(before + n))
                    for a in argv]  # fmt: skip
            out = benchlib.run_child([__file__, "--child", *argv], timeout=900)
            out["emu_cpu_s"] = server.cpu() - cpu0
            out["got"] = emu.accepted() - before
            results[name] = out
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(OSError):
                    Path(f"{path}{suffix}").unlink()
            print(f"  {name}: {json.dumps(out)}", file=sys.stderr)

        run(BASELINE, ["sender", emu.url, str(n), "{expect}"], spool_copy=False)
        run("spool floor (lease + ack only)", ["spool", "{path}", str(n)], spool_copy=True)
        for k in (1, 2, 4):
            run(f"ThreadFlusher -> emulator, max_in_flight={k}",
                ["flusher", "{path}", emu.url, str(n), str(k), "emulator"],
                spool_copy=True)  # fmt: skip
        run("ThreadFlusher -> null sink, max_in_flight=2",
            ["flusher", "{path}", sink.url, str(n), "2", "sink"],
            spool_copy=True, server=sink)  # fmt: skip
        run(f"hold {n} + SpoolHandler emits 1000", ["hold", "{path}"], spool_copy=True)

        stage_path = directory / "stage.spool"
        fill(stage_path, stage_n)
        stage_rows, staged = stage_profile(stage_path, emu.url)
    elapsed = time.monotonic() - started

    print(
        benchlib.env_header(
            "bench_drain: draining a pre-filled spool backlog",
            {
                "backlog": f"{n} typical records, {file_mb:.0f} MB spool file, "
                f"filled in {fill_s:.1f} s with append_many (10k per transaction)",
                "wall time": f"{elapsed:.0f} s",
            },
        )
    )
    base_rate = n / results[BASELINE]["seconds"]
    rows = []
    for name, out in results.items():
        holding = name.startswith("hold")
        rate = n / out["seconds"]
        rows.append(
            [
                name,
                "-" if holding else f"{rate:,.0f}",
                "-" if holding else ratio(rate, base_rate),
                "-" if holding else f"{out['cpu_s'] / n * 1e6:.1f}",
                "-" if holding or name.startswith("spool") else f"{out['emu_cpu_s'] / n * 1e6:.1f}",
                f"{out['maxrss_mb']:.0f} MB",
                f"{out['rss_mb']:.0f} MB ({out['held']} held)" if holding
                else (f"{out['held_rss_mb']:.0f} MB" if "held_rss_mb" in out else "-"),
                "yes" if out["ok"] else "NO",
            ]
        )  # fmt: skip
    print(
        benchlib.table(
            [
                "run (fresh process each)",
                "records/s",
                "ratio vs baseline",
                "CPU µs/rec",
                "server CPU µs/rec",
                "peak RSS",
                "RSS holding backlog",
                "complete",
            ],
            rows,
        )
    )
    print(f"\nbaseline: {BASELINE}")
    print(
        f"\n### Drain stages, µs per record ({staged} records, in-process, emulator subprocess)\n"
    )
    print(benchlib.table(["stage", "µs/record"], stage_rows))

    flusher = max(
        (out for name, out in results.items() if name.startswith("ThreadFlusher -> emulator")),
        key=lambda out: n / out["seconds"],
    )
    hold = results[f"hold {n} + SpoolHandler emits 1000"]
    rate = n / flusher["seconds"]
    rss = max(hold["maxrss_mb"], flusher["maxrss_mb"])
    print()
    print(
        benchlib.table(
            ["target", "met", "measured"],
            [
                [f"{n} backlog drains at >= 200,000 records/s (emulator, best in-flight)",
                 "yes" if rate >= 200_000 else "NO", f"{rate:,.0f}"],
                ["RSS < 100 MB while holding it (peak of hold and drain)",
                 "yes" if rss < 100 else "NO", f"{rss:.0f} MB"],
            ],
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
