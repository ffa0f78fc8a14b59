"""Cost of RecordMapper.map() on the logging path, next to two baselines.

Owns: one benchmark. For each scenario it times, in µs per record:

- ``Formatter.format``: ``logging.Formatter().format(record)``, the least any handler does;
- ``SDK make_request``: ``aliyun.log.SimpleLogHandler.make_request(record)``, the field
  extraction ``QueuedLogHandler.emit`` runs on the application thread before queueing
  (same fields, same options; no network);
- ``RecordMapper.map``: ours, default options unless the scenario says otherwise.

Scenarios: a typical record (message with two %-args, two ``extra=`` fields, a trace id bound
in the request context), a plain record (no extras, no context), a record with an exception
(the traceback is formatted once and cached on the record, by both the SDK and us, as
``logging.Formatter`` does), and ``extract_kv``. Every contestant runs ``--number`` calls per
repetition; repetitions are interleaved (A, B, C, A, B, C, ...) so machine drift hits all
alike; the table shows the median and the best repetition. Records are reused, not copied.

Run: ``python benchmarks/bench_mapping.py [--repeat 7] [--number 5000]``
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from yai_spool.handlers.context import bind
from yai_spool.handlers.mapping import RecordMapper

LOGGER = logging.getLogger("app.views")


def _record(
    msg: str, args: tuple[object, ...], extra: dict[str, object] | None = None, exc: bool = False
) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            {}["missing"]
        except KeyError:
            exc_info = sys.exc_info()
    return LOGGER.makeRecord(
        LOGGER.name, logging.INFO, "/srv/app/views.py", 120, msg, args, exc_info, "checkout", extra
    )


def _scenarios() -> list[tuple[str, logging.LogRecord, dict[str, object], bool]]:
    """(name, record, options shared by SDK and mapper, bind a trace id?)."""
    return [
        (
            "typical",
            _record("user %s paid %d EUR", ("alice", 42), {"order_id": "o-981", "ms": 12.5}),
            {},
            True,
        ),
        ("plain", _record("cache warmed", ()), {}, False),
        ("exception", _record("checkout failed for %s", ("bob",), exc=True), {}, False),
        (
            "extract_kv",
            _record("order=o-981 state=paid amount=%s", ("42.00",)),
            {"extract_kv": True},
            False,
        ),
    ]


def _time(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions (>= 5)")
    parser.add_argument("--number", type=int, default=5000, help="calls per repetition")
    opts = parser.parse_args()
    repeat = max(5, opts.repeat)

    from aliyun.log import SimpleLogHandler  # optional dependency: the baseline only

    print(
        f"Python {sys.version.split()[0]}, {repeat} interleaved repetitions x {opts.number} calls"
    )
    print(f"{'scenario':<12} {'contestant':<20} {'median µs':>10} {'best µs':>9} {'vs format':>10}")
    for name, record, options, bound in _scenarios():
        formatter = logging.Formatter()
        sdk = SimpleLogHandler("sls.example.test", "id", "secret", "p", "l", **options)
        mapper = RecordMapper(**options)  # type: ignore[arg-type]
        contestants: dict[str, Callable[[], object]] = {
            "Formatter.format": lambda f=formatter, r=record: f.format(r),
            "SDK make_request": lambda h=sdk, r=record: h.make_request(r),
            "RecordMapper.map": lambda m=mapper, r=record: m.map(r),
        }
        samples: dict[str, list[float]] = {k: [] for k in contestants}
        with (
            bind(trace_id="4bf92f3577b34da6a3ce929d0e0e4736") if bound else contextlib.nullcontext()
        ):
            for fn in contestants.values():  # warm caches (exc_text, key memo) outside timing
                fn()
            for _ in range(repeat):
                for label, fn in contestants.items():
                    samples[label].append(_time(fn, opts.number))
        base = statistics.median(samples["Formatter.format"])
        for label, values in samples.items():
            median = statistics.median(values)
            print(
                f"{name:<12} {label:<20} {median:>10.2f} {min(values):>9.2f} {median / base:>9.1f}x"
            )


if __name__ == "__main__":
    main()
