"""What OpenTelemetry correlation costs per record, with and without OTel in the process.

Owns: the per-record cost of the span lookup added to the mapper (issue 11: emit must not
slow measurably without OTel). Each scenario runs in a fresh interpreter, so "OTel not
imported" really means nobody imported it:

- ``otel=False``: the mapper without the feature (the cost before issue 11).
- ``no OTel in the process``: the default mapper; ``opentelemetry`` was never imported (a
  service that does not trace): one ``sys.modules`` lookup per record.
- ``OTel SDK, no active span``: the SDK is set up, the record is logged outside any span.
- ``OTel SDK, inside a span``: a recording span is current: three more fields per record.

Two measurements per scenario, both on "typical" records (a message with two %-args and two
``extra=`` fields, built outside the timed region): ``RecordMapper.encode`` alone (the part
that changed), and the whole ``SpoolHandler.handle`` with ``flusher="none"`` (map + one
SQLite commit: what the application thread pays). Method: ``--rounds`` rounds; in each
round every scenario runs once, in a rotated order (interleaved, so machine drift hits all
alike), as a fresh process that times 3 batches and keeps the fastest. The table shows the
median over rounds and the range, in µs per record; the ratio column is against
``otel=False`` of the same run. Nothing here is a test. ``--baseline-tree DIR`` adds the
default mapper of another source tree (e.g. main, before the feature) as a row.

Run: ``python benchmarks/bench_otel.py [--rounds 7] [--records 20000] [--baseline-tree DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchlib import env_header, ratio, table

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, logging, os, statistics, sys, tempfile, time
scenario, reps, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
span_cm = None
if scenario in ("sdk-idle", "sdk-span"):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
    tracer = trace.get_tracer("bench")
from yai_spool.handlers.mapping import RecordMapper
from yai_spool.handlers.durable import SpoolHandler
kw = {"otel": False} if scenario == "off" else {}
mapper = RecordMapper(**kw)
d = tempfile.mkdtemp()
handler = SpoolHandler(project="bench", logstore="otel", spool_path=os.path.join(d, "b.spool"),
                       flusher="none", **kw)
log = logging.getLogger("app.checkout")
def records(count):
    return [log.makeRecord(log.name, logging.INFO, "/srv/app/views.py", 42,
                           "user %s paid %d EUR", (f"u-{i}", i),
                           None, extra={"order_id": f"o-{i}", "ms": 1.5}) for i in range(count)]
def timed(fn, recs):
    t = time.perf_counter_ns()
    for r in recs:
        fn(r)
    return (time.perf_counter_ns() - t) / len(recs) / 1000
out = {"encode": [], "handle": []}
def run():
    for _ in range(reps):
        out["encode"].append(timed(mapper.encode, records(n)))
        out["handle"].append(timed(handler.handle, records(n // 4)))
    out["encode"], out["handle"] = min(out["encode"]), min(out["handle"])
timed(mapper.encode, records(2000)); timed(handler.handle, records(500))  # warm-up
if scenario == "sdk-span":
    with tracer.start_as_current_span("request"):
        run()
else:
    run()
handler.close()
out["otel_loaded"] = "opentelemetry.trace" in sys.modules
print(json.dumps(out))
"""

SCENARIOS = (
    ("off", "otel=False (no correlation)"),
    ("absent", "no OTel in the process (default)"),
    ("sdk-idle", "OTel SDK, no active span"),
    ("sdk-span", "OTel SDK, inside a span"),
)


def run(tree: Path, scenario: str, records: int) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, scenario, "3", str(records)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--baseline-tree", type=Path, default=None)
    args = parser.parse_args()
    rows_in = []
    if args.baseline_tree is not None:
        rows_in.append((args.baseline_tree.resolve(), "baseline", "baseline tree, default mapper"))
    rows_in += [(ROOT, key, name) for key, name in SCENARIOS]
    results: dict[str, dict[str, list[float]]] = {
        name: {"encode": [], "handle": []} for _, _, name in rows_in
    }
    loaded: dict[str, object] = {}
    for n in range(args.rounds):
        print(f"  round {n + 1}/{args.rounds}", file=sys.stderr)
        for tree, key, name in rows_in[n % len(rows_in) :] + rows_in[: n % len(rows_in)]:
            one = run(tree, "absent" if key == "baseline" else key, args.records)
            results[name]["encode"].append(float(one["encode"]))  # type: ignore[arg-type]
            results[name]["handle"].append(float(one["handle"]))  # type: ignore[arg-type]
            loaded[name] = one["otel_loaded"]
    base_name = SCENARIOS[0][1]
    base_enc = statistics.median(results[base_name]["encode"])
    base_hdl = statistics.median(results[base_name]["handle"])
    rows = []
    for _, _, name in rows_in:
        enc = results[name]["encode"]
        hdl = results[name]["handle"]
        enc_med, hdl_med = statistics.median(enc), statistics.median(hdl)
        rows.append([
            name,
            f"{enc_med:.2f}",
            f"{min(enc):.2f}-{max(enc):.2f}",
            ratio(enc_med, base_enc),
            f"{hdl_med:.1f}",
            f"{min(hdl):.1f}-{max(hdl):.1f}",
            ratio(hdl_med, base_hdl),
            "yes" if loaded[name] else "no",
        ])  # fmt: skip
    print(env_header("OpenTelemetry correlation: cost per record", {
        "rounds": args.rounds, "records per batch (encode)": args.records}))  # fmt: skip
    print(table(
        ["scenario", "encode µs", "range", "vs off", "handle µs", "range", "vs off",
         "OTel loaded"],
        rows,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
