"""Throughput of the SLS emulator: is it fast enough never to be the bottleneck?

Owns: one benchmark. It starts the emulator in this process and drives it with N client
*processes* (so clients do not compete with the emulator for this process's GIL), each
posting the same pre-built, V1-signed, lz4-compressed PutLogs request of 4096 logs over one
keep-alive ``httpx.Client``. It reports accepted logs/s and requests/s for 1, 2 and 4
clients, with and without signature verification, next to a baseline: a trivial
``http.server`` that reads the body and answers 200 without parsing anything, driven by the
same clients in the same run. Rates are measured on the server side over a fixed window
after a warm-up.

Run: ``python benchmarks/bench_emulator.py [--seconds 3] [--clients 1,2,4] [--logs 4096]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import request_contents

from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.emulator.scan import FAST_SCAN
from yai_spool.sls.compression import Compression, compress
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import encode_log_group
from yai_spool.sls.model import Log, LogGroup
from yai_spool.sls.signing import content_md5, format_http_date, sign_v1

AK, SK = "bench-key", "bench-secret"
PROJECT, LOGSTORE = "bench", "store"
PATH = f"/logstores/{LOGSTORE}/shards/lb"


def build_request(n_logs: int) -> tuple[dict[str, str], bytes]:
    now = int(time.time())
    logs = tuple(
        Log(
            now,
            request_contents(i),
            i % 1_000_000_000,
        )
        for i in range(n_logs)
    )
    raw = encode_log_group(LogGroup(logs, topic="bench", source="10.0.0.1"))
    body = compress(Compression.LZ4, raw)
    headers = {
        "Content-Type": "application/x-protobuf",
        "x-log-apiversion": "0.6.0",
        "x-log-bodyrawsize": str(len(raw)),
        "x-log-compresstype": "lz4",
        "Content-MD5": content_md5(body),
        "Date": format_http_date(datetime.now(UTC)),
        "Host": f"{PROJECT}.127.0.0.1",
    }
    sign_v1(headers, Credentials(AK, SK), "POST", PATH, {})
    return headers, body


def client_main(
    *, url: str, headers: dict[str, str], body: bytes, go: Any, stop: Any, errors: Any
) -> None:
    """One client process: post the same request over one keep-alive connection."""
    import httpx

    with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
        go.wait()
        while not stop.is_set():
            response = client.post(PATH, content=body, headers=headers)
            if response.status_code != 200:
                with errors.get_lock():
                    errors.value += 1


class _Baseline(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with _Baseline.lock:
            _Baseline.count += 1

    def log_message(self, *args: object) -> None:
        return


def measure(
    *,
    url: str,
    counter: Callable[[], int],
    n_clients: int,
    request: tuple[dict[str, str], bytes],
    seconds: float,
    warmup: float,
) -> tuple[float, int]:
    """Requests/s the server answered over ``seconds`` after ``warmup``, and client errors."""
    ctx = mp.get_context("spawn")  # no fork of a process that runs server threads
    go, stop = ctx.Event(), ctx.Event()
    errors = ctx.Value("i", 0)
    headers, body = request
    procs = [
        ctx.Process(
            target=client_main,
            kwargs={
                "url": url,
                "headers": headers,
                "body": body,
                "go": go,
                "stop": stop,
                "errors": errors,
            },
            daemon=True,
        )
        for _ in range(n_clients)
    ]
    for proc in procs:
        proc.start()
    go.set()
    stop.wait(warmup)  # the warm-up window; nothing sets `stop` yet
    c0, t0 = counter(), time.perf_counter()
    stop.wait(seconds)  # the measured window
    c1, t1 = counter(), time.perf_counter()
    stop.set()
    for proc in procs:
        proc.join(30)
    return (c1 - c0) / (t1 - t0), errors.value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--logs", type=int, default=4096)
    parser.add_argument("--db", help="SQLite file for the emulator (default: memory)")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    request = build_request(args.logs)
    headers, body = request
    print(f"request: {args.logs} logs, raw {headers['x-log-bodyrawsize']} B, lz4 {len(body)} B")
    print(f"emulator db: {args.db or ':memory:'}; fast scan (upb): {FAST_SCAN}")
    print(f"{'server':<28}{'clients':>8}{'requests/s':>12}{'logs/s':>12}{'errors':>8}")

    def row(name: str, n: int, rps: float, errs: int) -> None:
        print(f"{name:<28}{n:>8}{rps:>12.1f}{rps * args.logs:>12.0f}{errs:>8}", flush=True)

    baseline = ThreadingHTTPServer(("127.0.0.1", 0), _Baseline)
    baseline.daemon_threads = True
    threading.Thread(target=baseline.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{baseline.server_address[1]}"
    for n in clients:
        rps, errs = measure(
            url=base_url,
            counter=lambda: _Baseline.count,
            n_clients=n,
            request=request,
            seconds=args.seconds,
            warmup=args.warmup,
        )
        row("baseline http.server", n, rps, errs)
    baseline.shutdown()
    baseline.server_close()

    for verify in (False, True):
        if args.db:
            Path(args.db).unlink(missing_ok=True)
        config = EmulatorConfig(access_keys={AK: SK}, verify_signatures=verify, db_path=args.db)
        with Emulator(config) as emu:
            for n in clients:
                rps, errs = measure(
                    url=emu.url,
                    counter=lambda e=emu: e.counters().requests,
                    n_clients=n,
                    request=request,
                    seconds=args.seconds,
                    warmup=args.warmup,
                )
                row(f"emulator verify={verify}", n, rps, errs)


if __name__ == "__main__":
    main()
