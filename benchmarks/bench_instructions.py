"""Instructions, not seconds: what an import, one emit and one delivered record cost, per tree.

Usage::

    python benchmarks/bench_instructions.py [--before REV] [--records 3000]

Owns a before/after that machine load cannot blur: each case runs in a fresh interpreter under
``valgrind --tool=callgrind``, which counts executed instructions (repeatable for the same
binary, inputs and environment; ``PYTHONHASHSEED=0`` pins the hash seed, bytecode is cached
first). The cases:

- ``import``: ``import yai_spool; from yai_spool import SpoolHandler`` minus a bare interpreter;
- ``emit``: a ``SpoolHandler(flusher="none")`` logging N records, minus the same with none,
  divided by N (map + encode + SQLite append, per record);
- ``drain``: a fresh process with ``SpoolHandler(flusher="thread")`` shipping a backlog of N
  records to the emulator (a subprocess, not counted) and closing, minus an empty backlog,
  divided by N (lease + body + lz4 + sign + HTTP + ack, per record).

With ``--before REV`` the same cases run in a temporary worktree of REV too, and the table
shows the ratio. Needs valgrind on PATH; the emulator binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import AK, SK, EmulatorProcess, table

ROOT = Path(__file__).resolve().parents[1]

_HANDLER = (
    "from yai_spool import SpoolHandler\n"
    "h = SpoolHandler(project='bench-proj', logstore='app', endpoint={url!r},\n"
    "    access_key_id={ak!r}, access_key_secret={sk!r}, spool_path={path!r}, flusher={mode!r})\n"
)
_EMIT = (
    "import logging, sys\n" + _HANDLER + "log = logging.getLogger('bench.app')\n"
    "log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False\n"
    "for i in range({n}):\n"
    "    log.info('order %d shipped', i, extra={{'order_id': i, 'user': 'u%d' % (i % 97)}})\n"
    "h.close()\n"
)
_DRAIN = _HANDLER + "h.flush()\nh.close()\n"


def run(tree: Path, code: str, *, counted: bool = True) -> int:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-c", code]
    if counted:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    done = subprocess.run(
        cmd, cwd=tempfile.gettempdir(), env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{tree}: {done.stderr[-2000:]}")
    if not counted:
        return 0
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total in: {done.stderr[-500:]}")
    return int(found.group(1))


def measure(tree: Path, records: int, url: str, scratch: Path) -> dict[str, float]:
    def spool(name: str) -> str:
        return str(scratch / f"{tree.name}-{name}.spool")

    def emit(n: int, path: str, *, counted: bool = True) -> int:
        code = _EMIT.format(url=url, ak=AK, sk=SK, path=path, mode="none", n=n)
        return run(tree, code, counted=counted)

    def drain(path: str) -> int:
        return run(tree, _DRAIN.format(url=url, ak=AK, sk=SK, path=path, mode="thread"))

    run(tree, "import yai_spool; from yai_spool import SpoolHandler", counted=False)  # .pyc
    bare = run(tree, "pass")
    imported = run(tree, "import yai_spool; from yai_spool import SpoolHandler")
    per_emit = (emit(records, spool("e1")) - emit(0, spool("e0"))) / records
    emit(records, spool("backlog"), counted=False)
    emit(0, spool("empty"), counted=False)
    per_drain = (drain(spool("backlog")) - drain(spool("empty"))) / records
    return {"import": imported - bare, "emit": per_emit, "drain": per_drain}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="git revision to compare with (temporary worktree)")
    parser.add_argument("--records", type=int, default=3000)
    opts = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="yai-bench-instr-") as tmp:
        scratch = Path(tmp)
        trees: list[tuple[str, Path]] = [("HEAD", ROOT)]
        if opts.before:
            before = scratch / "before"
            subprocess.run(
                [
                    "git",
                    "-C",
                    str(ROOT),
                    "worktree",
                    "add",
                    "--detach",
                    "-q",
                    str(before),
                    opts.before,
                ],
                check=True,
            )
            trees.insert(0, (opts.before, before))
        try:
            with EmulatorProcess(scratch) as emu:
                results = {
                    label: measure(tree, opts.records, emu.url, scratch) for label, tree in trees
                }
        finally:
            if opts.before:
                subprocess.run(
                    [
                        "git",
                        "-C",
                        str(ROOT),
                        "worktree",
                        "remove",
                        "--force",
                        str(scratch / "before"),
                    ],
                    check=False,
                )
    rows = []
    for case, unit in (
        ("import", "instructions"),
        ("emit", "instr/record"),
        ("drain", "instr/record"),
    ):
        values = [results[label][case] for label, _ in trees]
        row = [case, unit, *(f"{v:,.0f}" for v in values)]
        if len(values) == 2:
            row.append(f"{values[1] / values[0]:.3f}x")
        rows.append(row)
    headers = ["case", "unit", *(label for label, _ in trees)]
    if len(trees) == 2:
        headers.append("HEAD / before")
    print(f"## bench_instructions: callgrind counts, {opts.records} records per case\n")
    print(table(headers, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
