"""yai-spool beside its peers in ONE interleaved run: emit cost, shipping rate, latency, backlog.

Owns: the peer table of issue 8 (benchmarks/README.md "Peers"). Every (system, scenario) runs in
a FRESH subprocess; the order of systems rotates every repetition; ratios are paired per
repetition against ``QueueHandler+QueueListener`` (the stdlib's non-durable hand-off).

Systems (``SYSTEMS``):

- ``no-op handler``: ``handle()`` into a handler whose ``emit`` does nothing (logging's own cost).
- ``QueueHandler+QueueListener``: the stdlib baseline; the listener's target drops records.
- ``aliyun QueuedLogHandler``: the official SDK's queued handler (defaults).
- ``aliyun-log-producer``: the official Rust producer behind a minimal handler (message, level,
  logger; lz4).
- ``logstash-async (SQLite)``: python-logstash-async with its SQLite event cache, TCP transport.
- ``otel BatchLogRecordProcessor``: opentelemetry-sdk ``LoggingHandler`` +
  ``BatchLogRecordProcessor`` + OTLP/HTTP exporter.
- ``sqlite3 per-record commit``: the durable floor: INSERT + COMMIT per record, the spool's
  pragmas (WAL, synchronous=NORMAL); ships nothing.
- ``yai-spool spool`` (thread flusher), ``yai-spool daemon`` (``flusher="none"`` + a
  ``ThreadFlusher`` in a second process, the ``yai-spool run`` model; its CPU is added),
  ``yai-spool memory`` (``MemoryQueueHandler``).

Everything that ships sends to ONE probe sink in its own process (``--sink``): an HTTP server
for PutLogs (lz4/zstd/deflate bodies, proxy-form requests) and OTLP/HTTP, and a TCP line server
for logstash. It decompresses each body and finds every record by the ``t=<time_ns>`` its message
carries: that counts deliveries for every protocol alike, and gives emit->arrival latency (one
machine, one clock). The sink answers at once, so the rates are the senders' own ceilings, not
an SLS's. (``bench_drain.py`` measures our drain against the emulator, which checks signatures.)

Scenarios, per system and repetition:

- ``emit1`` / ``emit8``: N records from 1 / 8 threads, each call timed (``perf_counter_ns``);
  then flush and poll the sink until all N arrived: e2e rec/s = N / (first call .. all
  arrived); CPU µs/rec = process CPU (+ the daemon's) / N.
- ``paced``: 2,000 rec/s for D seconds; the sink's emit->arrival latency p50 / p99.
- ``drain`` (durable systems only): a backlog of B records written with shipping off, then a
  fresh process ships it: rec/s and the shipping process's peak RSS.

Run: ``python benchmarks/bench_peers.py [--quick] [--reps 5] [--records 20000] [--only NAME]``;
``--quick`` is a < 3 min smoke run (1 repetition, small sizes).
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import math
import queue
import re
import resource
import statistics
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import benchlib
from benchhandlers import DropHandler, ProducerHandler, floor_connection
from benchlib import AK, PROJECT, SK, fmt_us, percentile, table

BASELINE = "QueueHandler+QueueListener"
SYSTEMS = (
    "no-op handler",
    BASELINE,
    "aliyun QueuedLogHandler",
    "aliyun-log-producer",
    "logstash-async (SQLite)",
    "otel BatchLogRecordProcessor",
    "sqlite3 per-record commit",
    "yai-spool spool",
    "yai-spool daemon",
    "yai-spool memory",
)
SHIPS = {s for s in SYSTEMS if s not in ("no-op handler", BASELINE, "sqlite3 per-record commit")}
DURABLE = ("logstash-async (SQLite)", "yai-spool spool", "yai-spool daemon")
SCENARIOS = ("emit1", "emit8", "paced", "drain")
PACED_RATE = 2000
WARMUP = 200
STAMP = re.compile(rb"t=(\d{19})")
MESSAGE = "request handled user=%s status=%d t=%d"


# --------------------------------------------------------------------------- probe sink


class Sink(benchlib.Subprocess, benchlib.EmulatorClient):
    """The probe sink subprocess: ``records()`` counts stamped records; ``latencies()``."""

    def __init__(self, max_lifetime: float) -> None:
        http_url, tcp_port = self._spawn([__file__, "--sink", str(max_lifetime)]).split()
        benchlib.EmulatorClient.__init__(self, http_url)
        self.tcp_port = int(tcp_port)

    @classmethod
    def attach(cls, url: str) -> Sink:
        """A client of a sink another process started (children only read its counters)."""
        sink = cls.__new__(cls)
        benchlib.EmulatorClient.__init__(sink, url)
        return sink

    def records(self) -> int:
        return int(self.stats()["records"])

    def get(self, path: str) -> Any:
        with self._opener.open(f"{self.url}{path}", timeout=30) as response:
            return json.loads(response.read())


def _sink_main(max_lifetime: float) -> None:
    import socketserver
    from http.server import ThreadingHTTPServer

    import lz4.block
    import zstandard

    lock = threading.Lock()
    state: dict[str, Any] = {"records": 0, "recording": False, "latencies": []}

    def seen(body: bytes) -> None:
        now = time.time_ns()
        stamps = STAMP.findall(body)
        with lock:
            state["records"] += len(stamps)
            if state["recording"]:
                state["latencies"].extend((now - int(s)) / 1e3 for s in stamps)

    def decompress(body: bytes, headers: Any) -> bytes:
        kind = headers.get("x-log-compresstype", "")
        if kind == "lz4":
            return lz4.block.decompress(body, uncompressed_size=int(headers["x-log-bodyrawsize"]))
        if kind == "zstd":
            return zstandard.ZstdDecompressor().decompress(
                body, max_output_size=int(headers["x-log-bodyrawsize"])
            )
        if kind == "deflate":
            return zlib.decompress(body)
        if headers.get("Content-Encoding", "") == "gzip":
            return zlib.decompress(body, 16 + zlib.MAX_WBITS)
        return body

    class Http(benchlib.QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen(decompress(body, self.headers))
            self.answer_put(("Content-Type", "application/x-protobuf"))

        def do_GET(self) -> None:
            with lock:
                if self.path == "/record":
                    state["recording"], state["latencies"] = True, []
                    reply: Any = {}
                elif self.path == "/latencies":
                    reply, state["recording"] = state["latencies"], False
                    state["latencies"] = []
                else:
                    reply = {"records": state["records"]}
            self.answer_json(reply)

    class Lines(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                seen(line)

    http = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    http.daemon_threads = True
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Lines)
    tcp.daemon_threads = True
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    threading.Timer(max_lifetime, http.shutdown).start()
    print(f"http://127.0.0.1:{http.server_address[1]} {tcp.server_address[1]}", flush=True)
    http.serve_forever()


# --------------------------------------------------------------------------- systems


class _ProducerHandler(ProducerHandler):
    """The Rust producer behind a minimal handler: message, level, logger; lz4."""

    def __init__(self) -> None:
        super().__init__("peers")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            contents = {"message": record.getMessage(), "level": record.levelname}
            contents["logger"] = record.name
            self.writer.send(contents, time=int(record.created), source="bench-host")
        except Exception:
            self.handleError(record)


class _SqliteFloor(logging.Handler):
    """INSERT + COMMIT per record with the spool's pragmas: the durable floor."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.conn = floor_connection(
            path,
            ("journal_mode=WAL", "synchronous=NORMAL"),  # autocheckpoint on, as SQLite's default
            "CREATE TABLE IF NOT EXISTS q (_id INTEGER PRIMARY KEY, data BLOB)",
        )

    def emit(self, record: logging.LogRecord) -> None:
        self.conn.execute("INSERT INTO q (data) VALUES (?)", (record.getMessage().encode(),))


class System:
    """One peer built in a child process: its handler, how to flush it, and its extra CPU."""

    def __init__(self, name: str, sink_url: str, tcp_port: int, directory: Path) -> None:
        self.name = name
        self.listener: logging.handlers.QueueListener | None = None
        self.drainer: benchlib.Drainer | None = None
        self.provider: Any = None
        self.handler = self._build(sink_url, tcp_port, directory)

    def _build(self, url: str, tcp_port: int, directory: Path) -> logging.Handler:
        name = self.name
        if name == "no-op handler":
            return DropHandler()
        if name == BASELINE:
            q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
            self.listener = logging.handlers.QueueListener(q, DropHandler())
            self.listener.start()
            return logging.handlers.QueueHandler(q)
        if name == "aliyun QueuedLogHandler":
            from aliyun.log import QueuedLogHandler

            return QueuedLogHandler("sls.example.test", AK, SK, PROJECT, "peers", close_wait=120)
        if name == "aliyun-log-producer":
            return _ProducerHandler()
        if name == "logstash-async (SQLite)":
            from logstash_async.handler import AsynchronousLogstashHandler

            return AsynchronousLogstashHandler(
                "127.0.0.1", tcp_port, database_path=str(directory / "logstash.db")
            )
        if name == "otel BatchLogRecordProcessor":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            self.provider = LoggerProvider()
            exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs")
            self.provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
            return LoggingHandler(logger_provider=self.provider)
        if name == "sqlite3 per-record commit":
            return _SqliteFloor(directory / "floor.sqlite3")
        if name == "yai-spool memory":
            from yai_spool import make_handler

            return make_handler("memory", **_ours(url))
        from yai_spool import SpoolHandler

        spool_path = directory / "peers.spool"
        if name == "yai-spool spool":
            return SpoolHandler(**_ours(url), spool_path=spool_path, flusher="thread")
        handler = SpoolHandler(
            **{**_ours(url), "endpoint": None}, spool_path=spool_path, flusher="none"
        )
        self.drainer = benchlib.Drainer(spool_path, url)
        return handler

    def flush(self) -> None:
        if self.listener is not None:
            self.listener.stop()
            self.listener.start()
        elif self.provider is not None:
            self.provider.force_flush()
        elif self.name == "aliyun QueuedLogHandler":
            self.handler.flush()  # its flush() is stop(): start a fresh worker
            self.handler.stop_flag = False  # type: ignore[attr-defined]
            self.handler.init_worker()  # type: ignore[attr-defined]
        elif self.name == "logstash-async (SQLite)":
            self.handler.flush()
            worker = getattr(self.handler, "_worker", None)
            if worker is not None:
                worker.force_flush_queued_events()
        elif self.drainer is None:
            self.handler.flush()

    def extra_cpu(self) -> float:
        return self.drainer.cpu() if self.drainer is not None else 0.0

    def extra_rss(self) -> float:
        return self.drainer.peak_rss_mb() if self.drainer is not None else 0.0

    def close(self) -> None:
        if self.drainer is not None:
            self.drainer.stop()
        if self.listener is not None:
            self.listener.stop()
        self.handler.close()
        if self.provider is not None:
            self.provider.shutdown()


def _ours(url: str) -> dict[str, Any]:
    return {
        "project": PROJECT,
        "logstore": "peers",
        "endpoint": url,
        "access_key_id": AK,
        "access_key_secret": SK,
        "source": "bench-host",
        "close_timeout": 5.0,
    }


# --------------------------------------------------------------------------- child


def _logger(handler: logging.Handler) -> logging.Logger:
    return benchlib.attach_logger("app.peers", handler)


def _emit(logger: logging.Logger, n: int, into: list[float]) -> None:
    clock, stamp = time.perf_counter_ns, time.time_ns
    for i in range(n):
        start = clock()
        logger.info(MESSAGE, f"user-{i % 500}", 200 + i % 7, stamp())
        into.append((clock() - start) / 1e3)


def _wait(sink: Sink, target: int, timeout: float, stall: float = 5.0) -> int:
    """Poll the sink until it holds ``target``; give up at ``timeout`` or after ``stall``
    seconds without a new arrival (a peer that dropped records never gets there)."""
    now = time.monotonic()
    deadline, last, progress = now + timeout, -1, now
    while (got := sink.records()) < target and (now := time.monotonic()) < deadline:
        if got != last:
            last, progress = got, now
        elif now - progress > stall:
            break
        time.sleep(0.005)
    return got


def child(system: str, scenario: str, args: dict[str, Any]) -> dict[str, Any]:
    benchlib.proxy_to(args["url"])  # the official clients reach the sink as a proxy
    logging.getLogger("yai_spool").propagate = False
    sink = Sink.attach(args["url"])
    directory = Path(args["dir"])
    if scenario == "drain":
        return _drain_child(system, sink, directory, args)
    peer = System(system, args["url"], args["tcp"], directory)
    logger = _logger(peer.handler)
    ships = system in SHIPS
    warm: list[float] = []
    before = sink.records()  # every earlier run's records have arrived: counts are stable
    _emit(logger, WARMUP, warm)  # imports, connections, threads: not measured
    peer.flush()
    base = _wait(sink, before + WARMUP, 60) if ships else 0
    result: dict[str, Any] = {}
    if scenario == "paced":
        sink.get("/record")  # the sink records emit->arrival latencies from here on
        n = int(PACED_RATE * args["paced_s"])
        clock, stamp = time.perf_counter, time.time_ns
        start = clock()
        for i in range(n):
            delay = start + i / PACED_RATE - clock()
            if delay > 0:
                time.sleep(delay)
            logger.info(MESSAGE, f"user-{i % 500}", 200, stamp())
        if ships:
            peer.flush()
            _wait(sink, base + n, 60)
            result["latencies"] = sink.get("/latencies")
        peer.close()
        return result
    n, threads = args["records"], 8 if scenario == "emit8" else 1
    samples: list[list[float]] = [[] for _ in range(threads)]
    cpu0, extra0 = benchlib.cpu_self(), peer.extra_cpu()
    start = time.perf_counter()
    if threads == 1:
        _emit(logger, n, samples[0])
    else:
        workers = [
            threading.Thread(target=_emit, args=(logger, n // threads, samples[t]))
            for t in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    emitted = time.perf_counter()
    total = (n // threads) * threads
    if ships:
        peer.flush()
        got = _wait(sink, base + total, args["ship_budget"]) - base
    else:
        got = total
    done = time.perf_counter()
    cpu = benchlib.cpu_self() - cpu0 + peer.extra_cpu() - extra0
    peer.close()
    latencies = sorted(x for s in samples for x in s)
    result.update(
        median=statistics.median(latencies),
        p99=percentile(latencies, 99),
        p999=percentile(latencies, 99.9),
        emit_rate=total / (emitted - start),
        e2e=got / (done - start),
        complete=got >= total,  # False: cut at the shipping budget, e2e is a partial rate
        n=total,
        delivered=got,
        cpu_us=cpu / got * 1e6 if got > 0 else math.nan,
    )
    return result


def _drain_child(system: str, sink: Sink, directory: Path, args: dict[str, Any]) -> dict[str, Any]:
    """Phase ``fill`` writes the backlog, shipping off; ``ship`` (a fresh process) ships it."""
    n = args["backlog"]
    if args["phase"] == "fill":
        if system == "logstash-async (SQLite)":
            from logstash_async.handler import AsynchronousLogstashHandler

            # A port nobody listens on: events stay in the SQLite cache.
            handler: logging.Handler = AsynchronousLogstashHandler(
                "127.0.0.1", args["dead_port"], database_path=str(directory / "logstash.db")
            )
        else:
            from yai_spool import SpoolHandler

            handler = SpoolHandler(
                **{**_ours(args["url"]), "endpoint": None},
                spool_path=directory / "peers.spool",
                flusher="none",
                max_spool_records=2_000_000,
            )
        logger = _logger(handler)
        stamp = time.time_ns
        for i in range(n):
            logger.info(MESSAGE, f"user-{i % 500}", 200, stamp())
        handler.close()
        return {}
    base = sink.records()
    cpu0 = benchlib.cpu_self()
    start = time.perf_counter()
    drainer = None
    if system == "logstash-async (SQLite)":
        from logstash_async.handler import AsynchronousLogstashHandler

        handler = AsynchronousLogstashHandler(
            "127.0.0.1", args["tcp"], database_path=str(directory / "logstash.db")
        )
        logger = _logger(handler)
        logger.info("start draining")  # its worker starts on the first record
    elif system == "yai-spool daemon":
        drainer = benchlib.Drainer(directory / "peers.spool", args["url"])
        handler = DropHandler()
    else:
        from yai_spool import SpoolHandler

        handler = SpoolHandler(
            **_ours(args["url"]),
            spool_path=directory / "peers.spool",
            flusher="thread",
            max_spool_records=2_000_000,
        )
        # Its flusher thread starts with the first record (fork safety), as logstash's worker;
        # the sink counts only records that carry a stamp, so this one is not counted.
        _logger(handler).info("start draining")
    got = _wait(sink, base + n, args["drain_timeout"]) - base
    seconds = time.perf_counter() - start
    cpu = benchlib.cpu_self() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if drainer is not None:
        cpu, rss = drainer.cpu(), drainer.peak_rss_mb()
        drainer.stop()
    handler.close()
    # A peer that cannot finish within the budget reports its partial rate, marked as such.
    return {
        "rate": got / seconds,
        "complete": got >= n,
        "got": got,
        "seconds": seconds,
        "rss": rss,
        "cpu_us": cpu / max(got, 1) * 1e6,
    }


# --------------------------------------------------------------------------- parent


def _dead_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(system: str, scenario: str, args: dict[str, Any], failures: dict[str, str]) -> Any:
    try:
        return benchlib.run_child(
            [__file__, "--child", system, scenario, json.dumps(args)], timeout=900
        )
    except Exception as exc:  # one peer failing must not cost the whole table
        failures[f"{system} / {scenario}"] = str(exc).strip().splitlines()[-1][:200]
        print(f"  FAILED {system} {scenario}: {exc}", file=sys.stderr)
        return None


def _median(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = benchlib.quick_parser(__doc__, "< 3 min smoke run")
    parser.add_argument("--records", type=int, default=None, help="records per emit run")
    parser.add_argument("--backlog", type=int, default=None, help="records of the drain backlog")
    parser.add_argument("--paced-seconds", type=float, default=None)
    parser.add_argument("--only", action="append", help="systems to run (repeatable)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--sink", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink is not None:
        _sink_main(args.sink)
        return
    if args.child:
        system, scenario, raw = args.child
        print(json.dumps(child(system, scenario, json.loads(raw))))
        return
    reps = args.reps or (1 if args.quick else 5)
    records = args.records or (4_000 if args.quick else 10_000)
    backlog = args.backlog or (20_000 if args.quick else 100_000)
    paced_s = args.paced_seconds or (1.0 if args.quick else 2.0)
    # Seconds a run may spend shipping before it is cut (a peer that batches 50 records per
    # 10 s would otherwise own the whole run); a cut run reports its partial rate, marked.
    ship_budget = 15.0
    drain_budget = 20.0 if args.quick else 30.0
    systems = [s for s in SYSTEMS if not args.only or s in args.only or s == BASELINE]
    results: dict[tuple[str, str], list[Any]] = {}
    failures: dict[str, str] = {}
    started = time.monotonic()
    sink = Sink(max_lifetime=3600)
    sink_cpu0 = sink.cpu()

    def sized(directory: Path, **sizes: Any) -> dict[str, Any]:
        """A child's arguments: where the sink is, its scratch directory, its sizes."""
        return {"url": sink.url, "tcp": sink.tcp_port, "dir": str(directory), **sizes}

    try:
        for rep in range(reps):
            order = benchlib.rotated(systems, rep)
            for scenario in ("emit1", "emit8", "paced"):
                for system in order:
                    print(f"rep {rep + 1}/{reps} {scenario:6} {system}", file=sys.stderr)
                    with benchlib.scratch_dir("peers-") as directory:
                        child_args = sized(
                            directory, records=records, paced_s=paced_s, ship_budget=ship_budget
                        )
                        out = _run(system, scenario, child_args, failures)
                    results.setdefault((system, scenario), []).append(out)
            for system in [s for s in order if s in DURABLE]:
                print(f"rep {rep + 1}/{reps} drain  {system}", file=sys.stderr)
                with benchlib.scratch_dir("peers-") as directory:
                    child_args = sized(
                        directory,
                        backlog=backlog,
                        dead_port=_dead_port(),
                        drain_timeout=drain_budget,
                    )
                    out = None
                    if _run(system, "drain", {**child_args, "phase": "fill"}, failures) is not None:
                        out = _run(system, "drain", {**child_args, "phase": "ship"}, failures)
                results.setdefault((system, "drain"), []).append(out)
    finally:
        sink_cpu = sink.cpu() - sink_cpu0
        sink.stop()
    print(report(systems, results, failures, reps, records, backlog, paced_s, started, sink_cpu))


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _e2e(runs: list[dict[str, Any] | None]) -> str:
    done = [r for r in runs if r]
    if not done:
        return "-"
    value = f"{_median([r['e2e'] for r in done]):,.0f}"
    short = [r for r in done if not r.get("complete", True)]
    if short:  # lost (a bounded in-memory queue dropped them) or not shipped within the budget
        worst = min(short, key=lambda r: r["delivered"])
        value += f" ({worst['delivered']:,} of {worst['n']:,} arrived)"
    return value


def _drain_rate(drains: list[dict[str, Any]]) -> str:
    if not drains:
        return "-"
    value = f"{_median([r['rate'] for r in drains]):,.0f}"
    cut = [r for r in drains if not r.get("complete", True)]
    if cut:  # cut at the time budget: say how far it got
        value += f" (cut: {cut[0]['got']:,} in {cut[0]['seconds']:.0f} s)"
    return value


def report(  # noqa: PLR0917 - one call site, every argument a different fact of the run
    systems: list[str],
    results: dict[tuple[str, str], list[Any]],
    failures: dict[str, str],
    reps: int,
    records: int,
    backlog: int,
    paced_s: float,
    started: float,
    sink_cpu: float,
) -> str:
    def runs(system: str, scenario: str) -> list[dict[str, Any] | None]:
        return results.get((system, scenario), [])

    def paired(system: str, scenario: str, base_system: str) -> str:
        """Median over repetitions of (system / base) measured in the same repetition."""
        ratios = [
            a["median"] / b["median"]
            for a, b in zip(runs(system, scenario), runs(base_system, scenario), strict=False)
            if a and b and b["median"]
        ]
        return f"{statistics.median(ratios):.2f}x" if ratios else "-"

    def field(system: str, scenario: str, key: str) -> float:
        return _median([r[key] for r in runs(system, scenario) if r])

    floor = "sqlite3 per-record commit"
    emit_rows, ship_rows = [], []
    for s in systems:
        emit_rows.append(
            [
                s,
                fmt_us(field(s, "emit1", "median")),
                paired(s, "emit1", BASELINE),
                paired(s, "emit1", floor),
                fmt_us(field(s, "emit1", "p99")),
                fmt_us(field(s, "emit1", "p999")),
                fmt_us(field(s, "emit8", "median")),
                paired(s, "emit8", BASELINE),
                fmt_us(field(s, "emit8", "p99")),
                fmt_us(field(s, "emit8", "p999")),
            ]
        )
        arrivals = sorted(x for r in runs(s, "paced") if r for x in r.get("latencies", []))
        drains = [r for r in runs(s, "drain") if r]
        ships = s in SHIPS
        ship_rows.append(
            [
                s,
                _e2e(runs(s, "emit1")) if ships else "(ships nothing)",
                _e2e(runs(s, "emit8")) if ships else "-",
                _num(field(s, "emit1", "cpu_us")),
                _num(field(s, "emit8", "cpu_us")),
                fmt_us(percentile(arrivals, 50)) if arrivals else "-",
                fmt_us(percentile(arrivals, 99)) if arrivals else "-",
                _drain_rate(drains),
                f"{max(r['rss'] for r in drains):.0f} MB" if drains else "-",
            ]
        )
    lines = [
        benchlib.env_header(
            "bench_peers: yai-spool beside its peers (one interleaved run)",
            {
                "sizes": f"{reps} repetitions; {records:,} records per emit run (1 thread, and "
                f"8 threads x {records // 8:,}); paced {PACED_RATE} rec/s for {paced_s:g} s; "
                f"drain backlog {backlog:,}",
                "peers": ", ".join(
                    f"{d} {benchlib._version(d)}"
                    for d in (
                        "aliyun-log-producer",
                        "python-logstash-async",
                        "opentelemetry-sdk",
                    )
                ),
                "sink": f"probe sink subprocess, {sink_cpu:.1f} CPU s over the run",
                "wall": f"{time.monotonic() - started:.0f} s",
            },
        ),
        "### Emit: what one `logger.info` costs the calling thread",
        "",
        "Median = median of the per-repetition medians; ratios are paired per repetition; "
        "p99 / p99.9 are medians over repetitions of each run's percentile.",
        "",
        table(
            [
                "system",
                "x1 median",
                f"vs {BASELINE}",
                "vs sqlite floor",
                "x1 p99",
                "x1 p99.9",
                "x8 median",
                f"x8 vs {BASELINE}",
                "x8 p99",
                "x8 p99.9",
            ],
            emit_rows,
        ),
        "",
        "### Shipping: delivery rate, CPU per delivered record, latency, backlog",
        "",
        "e2e = records / (first call .. the sink holds them all); CPU = the process's user+sys "
        "(+ the daemon's) per record; arrival = emit -> sink at a paced "
        f"{PACED_RATE} rec/s, pooled over repetitions; drain = a backlog written with shipping "
        "off, shipped by a fresh process (RSS = its peak). `-` = not applicable (no durable "
        "backlog) or failed (below); `(k of n arrived)` = the run was cut at its shipping "
        "budget, or the peer dropped records (a bounded in-memory queue).",
        "",
        table(
            [
                "system",
                "e2e rec/s x1",
                "e2e rec/s x8",
                "CPU µs/rec x1",
                "CPU µs/rec x8",
                "arrival p50",
                "arrival p99",
                "drain rec/s",
                "drain RSS",
            ],
            ship_rows,
        ),
    ]
    if failures:
        lines += ["", "Failures:", ""] + [f"- {k}: {v}" for k, v in failures.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
