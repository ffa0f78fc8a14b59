"""Run benchmark scripts in two checkouts of this repository, interleaved, in one sitting.

Usage::

    python benchmarks/bench_trees.py --before pre-issue12 [--rounds 2] \\
        [--script "bench_emit.py --quick" ...]

Owns the before/after comparison a restructuring needs ("no regression against the figures
measured just before the move"): it checks out ``--before`` (any git revision) into a
temporary worktree and runs each script there and in this checkout, alternating
(before, after, before, after, ...), so machine load drifts over both trees alike. Each run
is a fresh interpreter whose ``PYTHONPATH`` is its own tree, so the script, its helper
processes (emulator, drainer) and the package under test all come from the same checkout.
The scripts' own tables are printed unchanged, one block per run, headed by tree and round;
read them side by side (the same rows, the same baselines).

Invariants: the temporary worktree is removed at exit (``git worktree remove --force``);
nothing in this checkout is modified.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCRIPTS = (
    "bench_emit.py --quick",
    "bench_e2e.py --quick",
    "bench_drain.py --quick",
    "bench_encode.py",
    "bench_import.py",
)


def run(tree: Path, script: str) -> tuple[int, str]:
    name, *args = shlex.split(script)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / name), *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout + (done.stderr if done.returncode else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision of the 'before' tree")
    parser.add_argument("--rounds", type=int, default=2, help="runs per tree and script")
    parser.add_argument("--script", action="append", help="script and its options (repeatable)")
    opts = parser.parse_args()
    scripts = opts.script or list(DEFAULT_SCRIPTS)
    worst = 0
    with tempfile.TemporaryDirectory(prefix="yai-bench-trees-") as tmp:
        before = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(before), opts.before],
            check=True,
        )
        try:
            for script in scripts:
                for rnd in range(1, opts.rounds + 1):
                    for label, tree in (("before", before), ("after", ROOT)):
                        code, out = run(tree, script)
                        worst = max(worst, code)
                        rev = opts.before if label == "before" else "HEAD"
                        print(f"\n=== {script} | {label} ({rev}) | round {rnd} | exit {code}")
                        print(out.rstrip(), flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=False
            )
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
