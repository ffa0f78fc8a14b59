"""What ``import yai_spool`` and building a ``SpoolHandler`` cost a fresh interpreter.

Owns: the import-time and construction-time benchmark (issue 11 targets: ``import yai_spool``
<= 50 ms, constructing a ``SpoolHandler`` <= 20 ms on the development machine).

Each sample is one fresh ``python -c`` process timing, with ``time.perf_counter``:

- ``import logging``: the floor; every application that logs pays it anyway.
- ``import yai_spool``: the package (lazy: resolves nothing yet).
- ``from yai_spool import SpoolHandler``: the handler module and what it needs to emit.
- ``SpoolHandler(...)`` first / second: constructing one (opens or creates the SQLite spool
  file in a temporary directory; no thread starts, no client is built).
- ``import httpx``: what a process that only logs no longer pays.

The interpreters get a private bytecode cache (``PYTHONPYCACHEPREFIX`` in a temporary
directory, warmed by one run first), as an installed package has; ``--no-bytecode`` measures
compiling from source instead (``PYTHONDONTWRITEBYTECODE=1``, as this machine's shell sets).
Medians over ``--runs`` processes; min and max show the spread (the machine is shared).
``--baseline-tree DIR`` runs the same samples against another source tree (e.g. the main
branch: ``git archive main | tar -x -C /tmp/base``) and prints both. Nothing here is a test.

Run: ``python benchmarks/bench_import.py [--runs 9] [--no-bytecode] [--baseline-tree DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import env_header, table

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, tempfile, time
t0 = time.perf_counter()
import logging
t1 = time.perf_counter()
import yai_spool
t2 = time.perf_counter()
from yai_spool import SpoolHandler
t3 = time.perf_counter()
d = tempfile.mkdtemp()
kw = dict(project="my-project", logstore="app-logs", endpoint="https://cn-hangzhou.log.aliyuncs.com")
h1 = SpoolHandler(spool_path=os.path.join(d, "a.spool"), **kw)
t4 = time.perf_counter()
h2 = SpoolHandler(spool_path=os.path.join(d, "b.spool"), **kw)
t5 = time.perf_counter()
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"httpx", "rich", "typer", "watchdog"})
h1.close(); h2.close()
t6 = time.perf_counter()
import httpx
t7 = time.perf_counter()
print(json.dumps({"logging": t1 - t0, "package": t2 - t1, "handler": t3 - t2,
                  "construct": t4 - t3, "construct2": t5 - t4, "httpx": t7 - t6,
                  "heavy": heavy}))
"""

ROWS = (
    ("logging", "import logging (floor)"),
    ("package", "import yai_spool"),
    ("handler", "from yai_spool import SpoolHandler"),
    ("construct", "SpoolHandler(...) first"),
    ("construct2", "SpoolHandler(...) second"),
    ("httpx", "import httpx (avoided)"),
)


def sample(tree: Path, runs: int, bytecode: bool) -> list[dict[str, object]]:
    with tempfile.TemporaryDirectory(prefix="yai-bench-import-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = str(tree)
        if bytecode:
            env["PYTHONPYCACHEPREFIX"] = cache
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        out = []
        for i in range(runs + 1):  # the first run warms the bytecode cache: not counted
            done = subprocess.run(
                [sys.executable, "-c", CHILD],
                capture_output=True,
                text=True,
                env=env,
                cwd=tempfile.gettempdir(),  # never import from the current directory
                timeout=120,
                check=True,
            )
            if i:
                out.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {tree.name}: run {i}/{runs}", file=sys.stderr)
        return out


def summarize(samples: list[dict[str, object]]) -> dict[str, tuple[float, float, float]]:
    result = {}
    for key, _ in ROWS:
        values = sorted(1000 * float(s[key]) for s in samples)  # type: ignore[arg-type]
        result[key] = (statistics.median(values), values[0], values[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--no-bytecode", action="store_true")
    parser.add_argument("--baseline-tree", type=Path, default=None)
    args = parser.parse_args()
    bytecode = not args.no_bytecode
    trees = [("this tree", ROOT)]
    if args.baseline_tree is not None:
        trees.insert(0, ("baseline", args.baseline_tree.resolve()))
    results = {}
    heavy = {}
    for label, tree in trees:
        samples = sample(tree, args.runs, bytecode)
        results[label] = summarize(samples)
        heavy[label] = samples[-1]["heavy"]
    print(env_header("import and construction cost", {"runs": args.runs, "bytecode": bytecode}))
    headers = ["step"]
    for label, _ in trees:
        headers += [f"{label} median ms", f"{label} min-max"]
    rows = []
    for key, name in ROWS:
        row: list[object] = [name]
        for label, _ in trees:
            med, lo, hi = results[label][key]
            row += [f"{med:.1f}", f"{lo:.1f}-{hi:.1f}"]
        rows.append(row)
    print(table(headers, rows))
    for label, _ in trees:
        print(f"\n{label}: heavy modules loaded after building two handlers: {heavy[label]}")
    print(
        "\nTargets (issue 11): import yai_spool <= 50 ms, SpoolHandler(...) <= 20 ms. "
        "Each value is the median over fresh interpreters; `from yai_spool import "
        "SpoolHandler` is measured after `import yai_spool`, so the two add up."
    )


if __name__ == "__main__":
    main()
