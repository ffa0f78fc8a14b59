"""Shared plumbing of the benchmark scripts (not a benchmark itself).

Owns: the environment header every table starts with, the emulator run as a *subprocess*
(``python -m yai_spool.emulator``) so that its CPU never shares a GIL with the code being
measured, the other helper processes (null sink, drainer) and their common lifecycle
(``Subprocess``), percentile and table helpers, record factories, the child-process set-up
every fresh-process run repeats (proxy, logger), and the temporary directories the benchmarks
write their spools into. The handlers compared live in ``benchhandlers.py``; the interleaved
fresh-process runs of bench_e2e/bench_modes in ``benchruns.py``.

Invariants:
- Every server binds 127.0.0.1 and stops by itself (``--max-lifetime``) even if the benchmark
  dies; ``Subprocess.stop()`` ends it earlier, by pid, never by name.
- Temporary files live under one ``tempfile.mkdtemp`` directory per benchmark run, removed on
  exit (``scratch_dir``).
- Nothing here runs inside a timed region except what a script calls there itself.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import math
import os
import platform
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self, TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

AK, SK = "bench-ak", "bench-sk"
PROJECT = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOGGER = logging.getLogger("app.checkout")
T = TypeVar("T")


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


def begin(title: str, doc: str, **defaults: float) -> argparse.Namespace:
    """The start of the small scripts meant to be run in other checkouts too.

    Parses ``--NAME VALUE`` for each default (typed as the default), then prints the header
    naming the checkout measured (the ``yai_spool`` package imported).
    """
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    args = parser.parse_args()
    import yai_spool

    print(env_header(title, {"yai_spool": str(Path(yai_spool.__file__).parent)}))
    return args


def quick_parser(doc: str, smoke: str = "< 30 s smoke run") -> argparse.ArgumentParser:
    """The options of the interleaved benchmarks: ``--quick`` (``smoke``) and ``--reps``."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help=smoke)
    parser.add_argument("--reps", type=int, default=None)
    return parser


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


def request_contents(i: int) -> tuple[tuple[str, str], ...]:
    """The 8 fields of log ``i`` of the PutLogs payloads (bench_client, bench_emulator)."""
    return (
        ("level", "INFO"),
        ("logger", "app.module.submodule"),
        ("msg", f"request {i} handled in {i % 97} ms for user {i * 7919 % 10007}"),
        ("thread", "MainThread"),
        ("file", "/srv/app/module/submodule.py"),
        ("line", str(100 + i % 400)),
        ("trace_id", f"{i * 2654435761 % 2**64:016x}"),
        ("host", "web-01"),
    )


# --------------------------------------------------------------------------- process stats


def rss_mb(pid: int | None = None) -> float:
    """Current resident set size in MiB (``/proc/<pid>/status`` VmRSS)."""
    path = f"/proc/{pid or 'self'}/status"
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def cpu_self() -> float:
    """User + system CPU seconds of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process (``/proc/<pid>/stat``)."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return math.nan


# --------------------------------------------------------------------------- subprocesses


class Subprocess:
    """A helper process this benchmark started; it prints one line once it serves.

    ``stop()`` ends it by pid (terminate, then kill after ``stop_wait`` seconds), never by name.
    """

    proc: subprocess.Popen[str]
    stop_wait = 10.0

    def _spawn(self, argv: Sequence[str], *, quiet: bool = False) -> str:
        """Start ``python <argv>`` in the repository root; its first stdout line."""
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None,
            text=True,
            cwd=str(ROOT),
        )
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def _url_of(self, first: str, what: str) -> str:
        """The ``http://127.0.0.1:PORT`` in ``first``; stops the process if there is none."""
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        if match is None:
            self.stop()
            raise RuntimeError(f"{what} did not print its URL: {first!r}")
        return match.group(0)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


class EmulatorProcess(Subprocess, EmulatorClient):
    """``python -m yai_spool.emulator`` in a subprocess, on 127.0.0.1, storing to a file.

    The file store keeps the emulator's memory flat however many logs it accepts (the 1M
    drain). ``accepted()`` reads the accepted-log counter over the control endpoint.
    """

    def __init__(self, directory: Path, *, max_lifetime: float = 900.0) -> None:
        self.db = directory / f"emulator-{os.getpid()}-{time.monotonic_ns()}.db"
        argv = ["-m", "yai_spool.emulator", "--port", "0", "--host", "127.0.0.1"]
        argv += ["--db", str(self.db), "--access-key", f"{AK}:{SK}"]
        first = self._spawn([*argv, "--max-lifetime", str(max_lifetime)], quiet=True)
        EmulatorClient.__init__(self, self._url_of(first, "emulator"))

    def stop(self) -> None:
        super().stop()
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{self.db}{suffix}")


class NullSink(Subprocess, EmulatorClient):
    """A PutLogs sink that reads each body and answers 200, checking nothing, in a subprocess.

    The ceiling a sender can reach on this machine when the server costs (almost) nothing:
    the drain table runs the flusher against it beside the emulator, so a drain limited by
    the emulator's own checks shows as such. It counts requests (``GET /`` returns the
    count); every request of a drain but the last carries a full batch.
    """

    def __init__(self, *, max_lifetime: float = 900.0) -> None:
        first = self._spawn([__file__, "--sink", str(max_lifetime)])
        EmulatorClient.__init__(self, self._url_of(first, "sink"))

    def requests(self) -> int:
        return int(self.stats()["requests"])


class QuietHandler(BaseHTTPRequestHandler):
    """The request handler of the benchmarks' sinks: keep-alive, no access log."""

    protocol_version = "HTTP/1.1"

    def answer_put(self, *headers: tuple[str, str]) -> None:
        """200 with an empty body and a request id, as SLS answers a PutLogs."""
        self.send_response(200)
        self.send_header("x-log-requestid", "sink")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def answer_json(self, reply: Any) -> None:
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


def _sink_main(max_lifetime: float) -> None:
    import threading
    from http.server import ThreadingHTTPServer

    counts = {"requests": 0}
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                counts["requests"] += 1
            self.answer_put()

        def do_GET(self) -> None:
            self.answer_json(counts)

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


class Drainer(Subprocess):
    """A ``ThreadFlusher`` in ANOTHER process shipping ``spool`` to ``url`` (the daemon model).

    Started with ``python benchlib.py --drainer SPOOL URL``; ready once it holds the flusher
    lock. ``cpu()``/``peak_rss_mb()`` read its /proc entries; ``stop()`` ends it by pid.
    """

    stop_wait = 15.0

    def __init__(self, spool: Path | str, url: str) -> None:
        if self._spawn([__file__, "--drainer", str(spool), url]).strip() != "ready":
            self.stop()
            raise RuntimeError("drainer did not become the flusher")

    def peak_rss_mb(self) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return math.nan


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


# --------------------------------------------------------------------------- runs


def rotated(items: Sequence[T], rep: int) -> list[T]:
    """``items`` rotated by ``rep``: repetition ``rep`` starts with a different contestant."""
    k = rep % len(items)
    return [*items[k:], *items[:k]]


def start_together(workers: Sequence[threading.Thread], start: threading.Barrier) -> float:
    """Start ``workers`` (each waits on ``start``, sized ``len(workers) + 1``), release them
    at once and join them; the ``perf_counter`` at their release."""
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return t0


def proxy_to(url: str) -> None:
    """Route this process's HTTP through ``url``: how the official clients reach a local sink.

    Ours ignore the environment (``trust_env=False``), so this changes nothing else.
    """
    os.environ["HTTP_PROXY"] = url
    for var in ("NO_PROXY", "no_proxy", "http_proxy"):
        os.environ.pop(var, None)


def attach_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """Logger ``name`` at INFO with ``handler`` as its only handler, not propagating."""
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


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
