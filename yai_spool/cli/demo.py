"""``yai-spool demo``: the whole pipeline end to end on this machine, in one command.

Owns the demonstration that the README's first command runs: it starts the local SLS
emulator (standing in for SLS), runs a small threaded "service" that logs through
``SpoolHandler`` with request trace ids, injects a short SLS outage (503 ServerBusy) in the
middle, lets the flusher drain, and prints the spool's status next to what the emulator
received.

Invariants: binds 127.0.0.1 only and stops the emulator before returning; uses a fresh
spool in a temporary 0700 directory unless ``--spool-dir`` is given; prints no secret (the
demo access key secret is generated per run and never shown); exits 0 only when every
record the service logged was delivered.
"""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["demo"]

PROJECT, LOGSTORE = "demo-project", "demo-logstore"


def _service(logger: logging.Logger, worker: int, requests: int) -> None:
    """A stand-in for a threaded web service: each request logs a few lines."""
    from yai_spool.handlers.context import bind  # noqa: PLC0415

    for n in range(requests):
        with bind(trace_id=f"{worker:02d}-{n:05d}", worker=worker):
            logger.info("GET /orders/%d 200", n, extra={"latency_ms": 3 + n % 17})
            if n % 50 == 0:
                logger.warning("slow query on orders", extra={"rows": n * 10})
            if n % 250 == 0:
                try:
                    raise ValueError(f"bad order id {n}")
                except ValueError:
                    logger.exception("request failed")


def demo(
    records_per_worker: Annotated[
        int, typer.Option("--requests", help="Requests each worker thread serves.")
    ] = 500,
    workers: Annotated[int, typer.Option(help="Worker threads logging concurrently.")] = 4,
    outage: Annotated[
        int, typer.Option(help="PutLogs requests the emulator answers 503 ServerBusy.")
    ] = 3,
    spool_dir: Annotated[
        Path | None, typer.Option(help="Keep the spool here instead of a temporary directory.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Run a sample service through SpoolHandler into the local SLS emulator and show status."""
    # Imported here so every other `yai-spool` command starts without loading the emulator.
    from yai_spool.emulator import Emulator, EmulatorConfig  # noqa: PLC0415
    from yai_spool.handlers.durable import SpoolHandler  # noqa: PLC0415

    console = Console()
    key_id, secret = "demo-access-key", secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="yai-spool-demo-") as tmp:
        spool_path = (spool_dir or Path(tmp)) / "demo.spool"
        with Emulator(EmulatorConfig(access_keys={key_id: secret})) as emu:
            emu.faults.fail_next(outage, error_code="ServerBusy")
            handler = SpoolHandler(
                project=PROJECT,
                logstore=LOGSTORE,
                endpoint=emu.url,
                spool_path=spool_path,
                access_key_id=key_id,
                access_key_secret=secret,
                topic="demo",
                linger=0.2,
            )
            logger = logging.getLogger("demo.service")
            logger.setLevel(logging.INFO)
            logger.propagate = False
            logger.addHandler(handler)
            started = time.perf_counter()
            threads = [
                threading.Thread(target=_service, args=(logger, w, records_per_worker))
                for w in range(workers)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            logged_in = time.perf_counter() - started
            appended = handler.spool.stats().appended
            # flush() returns early when a send fails (the outage); keep waiting across it.
            deadline = time.monotonic() + 60.0
            delivered_all = False
            while not delivered_all and time.monotonic() < deadline:
                delivered_all = handler.flush_until(deadline - time.monotonic())
                if not delivered_all:
                    time.sleep(0.05)  # the flusher is backing off; look again shortly
            drained_in = time.perf_counter() - started
            stats = handler.spool.stats()
            stored = emu.logs(PROJECT, LOGSTORE)
            logger.removeHandler(handler)
            handler.close()
            counters = emu.counters()
    summary: dict[str, Any] = {
        "records_logged": appended,
        "seconds_logging": round(logged_in, 3),
        "seconds_until_delivered": round(drained_in, 3),
        "spool": {
            "ready": stats.ready_records,
            "leased": stats.leased_records,
            "dead": stats.dead_records,
            "delivered": stats.delivered,
            "retried": stats.retried,
            "dropped": dict(stats.dropped),
            "last_error": stats.last_error.code if stats.last_error else None,
        },
        "emulator": {
            "stored_logs": len(stored),
            "requests": counters.to_json(),
        },
        "all_delivered": delivered_all and len(stored) == appended,
        "sample": [{k: v.decode("utf-8", "replace") for k, v in s.contents} for s in stored[:2]],
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        _print(console, summary)
    raise typer.Exit(0 if summary["all_delivered"] else 1)


def _print(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="yai-spool demo: service -> spool -> flusher -> SLS emulator")
    table.add_column("what")
    table.add_column("value", justify="right")
    spool = summary["spool"]
    rows = [
        ("records logged by the service", summary["records_logged"]),
        ("time spent logging (s)", summary["seconds_logging"]),
        ("time until all delivered (s)", summary["seconds_until_delivered"]),
        ("spool: delivered", spool["delivered"]),
        ("spool: retried after the injected outage", spool["retried"]),
        ("spool: ready / leased / dead", f"{spool['ready']} / {spool['leased']} / {spool['dead']}"),
        ("spool: dropped", sum(spool["dropped"].values())),
        ("spool: last error", spool["last_error"] or "-"),
        ("emulator: logs stored", summary["emulator"]["stored_logs"]),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    for sample in summary["sample"][:1]:
        console.print("one stored record:", sample)
    if summary["all_delivered"]:
        console.print("[green]ok: every record arrived[/]")
    else:
        console.print("[red]incomplete: records are still in the spool[/]")
