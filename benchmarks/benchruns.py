"""Interleaved fresh-process runs against one emulator: bench_e2e.py and bench_modes.py.

Owns: the protocol between such a script and its children. The parent starts one emulator
subprocess, then for every repetition runs each configuration (rotated order) in a FRESH child
(``python SCRIPT --child CONFIG URL LOGSTORE N EXPECT DIR``) that logs N records after a
warm-up of ``warmup`` records and waits until the emulator holds ``EXPECT`` logs in all; it
prints one JSON line. The parent adds what only it can see: the logs the emulator got from the
run (``got``, warm-up excluded) and the emulator's CPU seconds during it (``emu_cpu_s``).

Invariants: every run ships to its own logstore (``NAME-SEQ``), so counts never mix; the
emulator is read before and after a child, never while it measures; a configuration in
``SILENT`` ships nothing (``got`` is 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib

SILENT = ("logging only",)  # the rows that only measure making the records


@dataclass(frozen=True)
class ChildRun:
    """What one child is told: its configuration, the emulator, and how many logs to wait for."""

    config: str
    url: str
    logstore: str
    n: int
    expect: int
    directory: str

    @classmethod
    def parse(cls, values: Sequence[str]) -> ChildRun:
        config, url, logstore, n, expect, directory = values
        return cls(config, url, logstore, int(n), int(expect), directory)

    def argv(self, script: str) -> list[str]:
        values = (self.config, self.url, self.logstore, str(self.n), str(self.expect))
        return [script, "--child", *values, self.directory]

    def prepare(self) -> benchlib.EmulatorClient:
        """Set this child process up (the official clients reach the emulator as a proxy;
        yai-spool's own diagnostics stay off the root logger); the emulator's counters."""
        benchlib.proxy_to(self.url)
        logging.getLogger("yai_spool").propagate = False
        return benchlib.EmulatorClient(self.url)

    def logger(self, handler: logging.Handler) -> logging.Logger:
        return benchlib.attach_logger(f"app.{self.logstore}", handler)


def same_records(config: str, records: int) -> int:
    """Every configuration logs the ``--records`` of the run."""
    return records


@dataclass(frozen=True)
class Plan:
    """What a script runs: its ``configs``, each in a fresh child (``child``) of ``script``.

    ``sizes`` are the default ``--records`` of a ``--quick`` and of a full run;
    ``records(config, n)`` is a configuration's own N; ``progress(out, n)`` the tail of a
    run's stderr line. The scratch directory and logstores are named after the script.
    """

    script: str
    doc: str
    configs: Sequence[str]
    child: Callable[[ChildRun], dict[str, Any]]
    warmup: int
    sizes: tuple[int, int]
    progress: Callable[[dict[str, Any], int], str]
    records: Callable[[str, int], int] = same_records

    @property
    def name(self) -> str:
        return Path(self.script).stem.removeprefix("bench_")


@dataclass(frozen=True)
class Outcome:
    """A finished parent run: its sizes, each configuration's child outputs, wall seconds."""

    records: int
    reps: int
    results: dict[str, list[dict[str, Any]]]
    elapsed: float

    def med(self, config: str, key: str) -> float:
        """The median of ``key`` over the configuration's runs."""
        return statistics.median(r[key] for r in self.results[config])

    def header(self, title: str, records: str, extra: dict[str, str] | None = None) -> str:
        """The environment header: ``records`` per run, the repetitions, ``extra``, wall time."""
        sizes = f"{records}, {self.reps} interleaved repetitions, one fresh process each"
        facts = {"records per run": sizes, **(extra or {}), "wall time": f"{self.elapsed:.0f} s"}
        return benchlib.env_header(title, facts)


def main(plan: Plan, report: Callable[[Outcome], None]) -> None:
    """Parse ``--quick``, ``--reps``, ``--records``, run ``plan`` and ``report`` its outcome;
    or, in a child (the hidden ``--child``), run ``plan.child`` and print its JSON line."""
    parser = benchlib.quick_parser(plan.doc)
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(plan.child(ChildRun.parse(args.child))))
        return
    records = args.records or plan.sizes[0 if args.quick else 1]
    reps = args.reps or (1 if args.quick else 3)
    started = time.monotonic()
    results = _interleaved(plan, records, reps)
    report(Outcome(records, reps, results, time.monotonic() - started))


def _interleaved(plan: Plan, records: int, reps: int) -> dict[str, list[dict[str, Any]]]:
    """Every configuration once per repetition, rotated; the outputs in run order."""
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in plan.configs}
    name, warmup = plan.name, plan.warmup
    with (
        benchlib.scratch_dir(f"yai-bench-{name}-") as directory,
        benchlib.EmulatorProcess(directory) as emu,
    ):
        seq = 0
        for rep in range(reps):
            for config in benchlib.rotated(plan.configs, rep):
                seq += 1
                n = plan.records(config, records)
                before = emu.accepted()
                emu_cpu = emu.cpu()
                expect = before + warmup + n
                run = ChildRun(config, emu.url, f"{name}-{seq}", n, expect, str(directory))
                out = benchlib.run_child(run.argv(plan.script), timeout=900)
                out["emu_cpu_s"] = emu.cpu() - emu_cpu
                out["got"] = emu.accepted() - before - warmup if config not in SILENT else 0
                results[config].append(out)
                print(
                    f"  rep {rep + 1}/{reps} {config}: {n / out['total_s']:,.0f} rec/s, "
                    + plan.progress(out, n),
                    file=sys.stderr,
                )
    return results
