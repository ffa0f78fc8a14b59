"""Shared plumbing of bench_emit.py, bench_e2e.py and bench_drain.py (not a benchmark itself).

Owns: the environment header every table starts with, the emulator run as a *subprocess*
(``python -m yai_spool.emulator``) so that its CPU never shares a GIL with the code being
measured, percentile and table helpers, record factories, and the temporary directories the
benchmarks write their spools into.

Invariants:
- Every server binds 127.0.0.1 and stops by itself (``--max-lifetime``) even if the benchmark
  dies; ``EmulatorProcess.stop()`` ends it earlier, by pid, never by name.
- Temporary files live under one ``tempfile.mkdtemp`` directory per benchmark run, removed on
  exit (``scratch_dir``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AK, SK = "bench-ak", "bench-sk"
PROJECT = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOGGER = logging.getLogger("app.checkout")


# --------------------------------------------------------------------------- environment


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def env_header(title: str, extra: dict[str, Any] | None = None) -> str:
    """Markdown lines naming the machine, Python, SQLite and the libraries compared."""
    load = os.getloadavg()
    lines = [
        f"## {title}",
        "",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC; host load (1/5/15 min) at "
        f"start: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs ({_cpu_model()}), "
        f"{platform.system()} {platform.release()}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"SQLite {sqlite3.sqlite_version}, "
        f"GIL switch interval {sys.getswitchinterval() * 1e3:g} ms",
        f"- persist-queue {_version('persist-queue')}, aliyun-log-python-sdk "
        f"{_version('aliyun-log-python-sdk')}, orjson {_version('orjson')}, "
        f"httpx {_version('httpx')}, lz4 {_version('lz4')}",
    ]
    for key, value in (extra or {}).items():
        lines.append(f"- {key}: {value}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- numbers


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; the first column left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        out = [values[0].ljust(widths[0])]
        out += [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "| " + " | ".join(out) + " |"

    sep = ["-" * widths[0]] + ["-" * (w - 1) + ":" for w in widths[1:]]
    sep_line = "| " + " | ".join(sep) + " |"
    return "\n".join([line(list(headers)), sep_line, *(line(r) for r in cells)])


def fmt_us(value: float) -> str:
    if math.isnan(value):
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f} ms"
    return f"{value:.1f} µs"


def ratio(value: float, base: float) -> str:
    if not base or math.isnan(value) or math.isnan(base):
        return "-"
    return f"{value / base:.2f}x"


# --------------------------------------------------------------------------- records


def make_record(i: int) -> logging.LogRecord:
    """A fresh "typical" record: a message with two %-args and two ``extra=`` fields.

    The same shape as the "typical" scenario of bench_mapping.py (minus the bound context).
    Timed loops build each record just before the timed call (outside the timer), as
    ``logger.info`` does: a record built long before is cold in the CPU caches and would cost
    every handler that reads it a few µs more than in a real application.
    """
    return LOGGER.makeRecord(
        LOGGER.name,
        logging.INFO,
        "/srv/app/checkout/views.py",
        120 + (i % 7),
        "user %s paid %d EUR",
        (f"user-{i % 5000}", i % 997),
        None,
        "pay",
        {"order_id": f"o-{i}", "ms": 12.5},
    )


def make_records(n: int, seed: int = 0) -> list[logging.LogRecord]:
    """``n`` fresh typical records (for untimed uses such as pre-filling a spool)."""
    return [make_record(seed + i) for i in range(n)]


# --------------------------------------------------------------------------- process stats


def rss_mb(pid: int | None = None) -> float:
    """Current resident set size in MiB (``/proc/<pid>/status`` VmRSS)."""
    path = f"/proc/{pid or 'self'}/status"
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (``/proc/<pid>/stat``)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return math.nan


# --------------------------------------------------------------------------- emulator


class EmulatorClient:
    """Reads an emulator's counters over its control endpoint (no proxy: it is local)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def stats(self) -> dict[str, Any]:
        with self._opener.open(f"{self.url}/_emulator/stats", timeout=10) as response:
            return json.loads(response.read())

    def accepted(self) -> int:
        return int(self.stats()["accepted_logs"])

    def wait_for(self, total: int, timeout: float, poll: float = 0.01) -> bool:
        """Poll until the emulator accepted at least ``total`` logs; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.accepted() >= total:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(poll)


class EmulatorProcess(EmulatorClient):
    """``python -m yai_spool.emulator`` in a subprocess, on 127.0.0.1, storing to a file.

    The file store keeps the emulator's memory flat however many logs it accepts (the 1M
    drain). ``accepted()`` reads the accepted-log counter over the control endpoint.
    """

    def __init__(self, directory: Path, *, max_lifetime: float = 900.0) -> None:
        self.db = directory / f"emulator-{os.getpid()}-{time.monotonic_ns()}.db"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yai_spool.emulator",
                "--port",
                "0",
                "--host",
                "127.0.0.1",
                "--db",
                str(self.db),
                "--access-key",
                f"{AK}:{SK}",
                "--max-lifetime",
                str(max_lifetime),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        if match is None:
            self.stop()
            raise RuntimeError(f"emulator did not print its URL: {first!r}")
        super().__init__(match.group(0))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.db}{suffix}")

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NullSink(EmulatorClient):
    """A PutLogs sink that reads each body and answers 200, checking nothing, in a subprocess.

    The ceiling a sender can reach on this machine when the server costs (almost) nothing:
    the drain table runs the flusher against it beside the emulator, so a drain limited by
    the emulator's own checks shows as such. It counts requests (``GET /`` returns the
    count); every request of a drain but the last carries a full batch.
    """

    def __init__(self, *, max_lifetime: float = 900.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(max_lifetime)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        if match is None:
            self.stop()
            raise RuntimeError(f"sink did not print its URL: {first!r}")
        super().__init__(match.group(0))

    def requests(self) -> int:
        return int(self.stats()["requests"])

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> NullSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _sink_main(max_lifetime: float) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    counts = {"requests": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                counts["requests"] += 1
            self.send_response(200)
            self.send_header("x-log-requestid", "sink")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = json.dumps(counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Timer(max_lifetime, server.shutdown).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory on the same disk as the spools of a real deployment."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Drainer:
    """A ``ThreadFlusher`` in ANOTHER process shipping ``spool`` to ``url`` (the daemon model).

    Started with ``python benchlib.py --drainer SPOOL URL``; ready once it holds the flusher
    lock. ``cpu()``/``rss_mb()`` read its /proc entries; ``stop()`` ends it by pid.
    """

    def __init__(self, spool: Path | str, url: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--drainer", str(spool), url],
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("drainer did not become the flusher")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def peak_rss_mb(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return math.nan

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _drainer_main(path: str, url: str) -> None:
    import signal

    from yai_spool.shipping.flusher import FlusherConfig, ThreadFlusher
    from yai_spool.sls.client import PutLogsClient
    from yai_spool.spool import Spool, SpoolConfig

    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    spool = Spool(path, SpoolConfig(integrity_check="none", max_records=2_000_000))
    flusher = ThreadFlusher(
        spool,
        PutLogsClient(url, access_key_id=AK, access_key_secret=SK),
        FlusherConfig(linger=0.05, poll_interval=0.05),
    )
    flusher.start()
    deadline = time.monotonic() + 30
    while not spool.is_flusher and time.monotonic() < deadline:
        time.sleep(0.005)
    print("ready", flush=True)
    while not stop:
        flusher.wake()  # records come from another process: no wake() reaches us
        time.sleep(0.02)
    flusher.stop(0.0)
    spool.close()


def run_child(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python <args>`` and parse the JSON object on its last stdout line."""
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child {args} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__" and sys.argv[1:2] == ["--drainer"]:
    _drainer_main(sys.argv[2], sys.argv[3])
if __name__ == "__main__" and sys.argv[1:2] == ["--sink"]:
    _sink_main(float(sys.argv[2]))
