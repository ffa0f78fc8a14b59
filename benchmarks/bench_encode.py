"""Encoder/decoder benchmark: how yai_spool.sls.encoding chose its defaults.

Builds LogGroups shaped like a batch of Python logging records (4096 logs x 12 fields, about
300 bytes per record encoded) and measures, interleaving all cases in every repetition so that
machine noise hits them equally, the median over the repetitions of:

- encode alone, per encoder in ``ENCODERS`` (records/s);
- encode + compress (lz4, zstd, none) + V1 sign, i.e. a full ``build_put_logs_request_from_raw``
  (records/s);
- decode: our pure-Python ``decode_log_group`` against protobuf (upb) ``LogGroupRaw`` parsing
  followed by conversion to a ``LogGroup`` (what the emulator would otherwise do).

Run: ``python benchmarks/bench_encode.py [--logs 4096] [--reps 7]``. Not a pytest test.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import ENCODERS, decode_log_group
from yai_spool.sls.model import Log, LogGroup
from yai_spool.sls.request import Destination, Endpoint, build_put_logs_request_from_raw

WORDS = (
    *("request", "user", "order", "payment", "cache", "miss", "hit", "timeout", "retry"),
    *("connect", "database", "query", "shard", "flush", "spool", "batch", "handler"),
    *("worker", "failed", "succeeded", "latency", "bytes", "records"),
)


def make_group(n_logs: int, seed: int = 42) -> LogGroup:
    """A batch of logging-record-shaped logs: 12 fields, ~300 B per record encoded."""
    rng = random.Random(seed)
    base = 1767225600
    logs = []
    for i in range(n_logs):
        message = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7)))
        contents = (
            ("level", rng.choice(("INFO", "INFO", "INFO", "WARNING", "ERROR", "DEBUG"))),
            ("logger", rng.choice(("app.api", "app.db", "app.worker", "uvicorn.access"))),
            ("message", f"{message} id={rng.getrandbits(48):012x}"),
            ("module", rng.choice(("views", "models", "tasks", "handlers"))),
            ("funcName", rng.choice(("get", "post", "run", "flush", "handle_request"))),
            ("lineno", str(rng.randint(1, 2000))),
            ("process", "12345"),
            ("thread", str(139_800_000_000_000 + rng.randint(0, 9))),
            ("threadName", rng.choice(("MainThread", "ThreadPoolExecutor-0_0", "worker-1"))),
            ("pathname", "/srv/app/" + rng.choice(("api/views.py", "db/models.py", "tasks.py"))),
            ("host", "web-01"),
            ("trace_id", f"{rng.getrandbits(128):032x}"),
        )
        logs.append(Log(base + i // 100, contents, rng.randrange(1_000_000_000)))
    return LogGroup(tuple(logs), "app", "10.0.0.1", (("env", "prod"), ("__pack_id__", "A-1")))


def protobuf_decoder() -> Callable[[bytes], LogGroup] | None:
    """Decode with upb's LogGroupRaw, then build our LogGroup (the alternative we measured)."""
    try:
        from aliyun.log.log_logs_raw_pb2 import LogGroupRaw
    except ImportError:
        return None

    def decode(raw: bytes) -> LogGroup:
        message = LogGroupRaw()
        message.ParseFromString(raw)
        logs = tuple(
            Log(
                log.Time,
                tuple((c.Key, c.Value) for c in log.Contents),
                log.Time_ns if log.HasField("Time_ns") else None,
            )
            for log in message.Logs
        )
        tags = tuple((t.Key, t.Value) for t in message.LogTags)
        return LogGroup(logs, message.Topic, message.Source, tags)

    return decode


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", type=int, default=4096)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()

    group = make_group(args.logs)
    destination = Destination(Endpoint.parse("cn-hangzhou.log.aliyuncs.com"), "proj", "store")
    credentials = Credentials("LTAI5tTestKeyId", "TestSecret123")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    raw = ENCODERS["python"](group)
    for name, encoder in ENCODERS.items():
        if encoder(group) != raw:
            sys.exit(f"encoder {name} disagrees with python: not benchmarking a broken encoder")

    cases: dict[str, Callable[[], object]] = {}
    for name, encoder in ENCODERS.items():
        cases[f"encode {name}"] = lambda encoder=encoder: encoder(group)
        for kind in (Compression.LZ4, Compression.ZSTD, Compression.NONE):

            def pipeline(encoder: Callable[[LogGroup], bytes] = encoder, kind=kind) -> None:
                build_put_logs_request_from_raw(
                    destination, encoder(group), credentials, compression=kind, now=now
                )

            cases[f"encode+{kind.value}+v1 {name}"] = pipeline
    cases["decode python"] = lambda: decode_log_group(raw)
    pb_decode = protobuf_decoder()
    if pb_decode is not None:
        if pb_decode(raw) != decode_log_group(raw):
            sys.exit("protobuf decoder disagrees with ours")
        cases["decode protobuf"] = lambda: pb_decode(raw)

    for fn in cases.values():  # warm caches and imports
        fn()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.reps):
        for name, fn in cases.items():
            samples[name].append(timed(fn))

    print(
        f"# {args.logs} logs x 12 fields, {len(raw)} B raw ({len(raw) / args.logs:.0f} B/record),"
        f" median of {args.reps} interleaved reps; Python {platform.python_version()},"
        f" {platform.machine()}"
    )
    print(f"{'case':<34}{'records/s':>14}{'ms/batch':>11}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<34}{args.logs / median:>14,.0f}{median * 1e3:>11.2f}")


if __name__ == "__main__":
    main()
