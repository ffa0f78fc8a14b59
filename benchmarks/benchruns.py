"""Interleaved fresh-process runs against one emulator: bench_e2e.py and bench_modes.py.

Owns: the protocol between such a script and its children. The parent starts one emulator
subprocess, then for every repetition runs each configuration (rotated order) in a FRESH child
(``python SCRIPT --child CONFIG URL LOGSTORE N EXPECT DIR``) that logs N records after a
warm-up of ``warmup`` records and waits until the emulator holds ``EXPECT`` logs in all; it
prints one JSON line. The parent adds what only it can see: the logs the emulator got from the
run (``got``, warm-up excluded) and the emulator's CPU seconds during it (``emu_cpu_s``).

Invariants: every run ships to its own logstore (``NAME-SEQ``), so counts never mix; the
emulator is read before and after a child, never while it measures; a configuration in
``silent`` ships nothing (``got`` is 0).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import benchlib

SILENT = ("logging only",)  # the rows that only measure making the records


def options(doc: str) -> argparse.Namespace:
    """``--quick``, ``--records``, ``--reps``, and the hidden ``--child`` of a child run."""
    parser = argparse.ArgumentParser(description=doc.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="< 30 s smoke run")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    return parser.parse_args()


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


def run_interleaved(
    script: str,
    configs: Sequence[str],
    *,
    reps: int,
    name: str,
    warmup: int,
    records: Callable[[str], int],
    progress: Callable[[dict[str, Any], int], str],
) -> tuple[dict[str, list[dict[str, Any]]], float]:
    """Every configuration once per repetition, each in a fresh child of ``script``.

    ``records(config)`` is its N; ``progress(out, n)`` the tail of its stderr line. Returns the
    children's outputs per configuration (in run order) and the wall seconds of it all.
    """
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    started = time.monotonic()
    with (
        benchlib.scratch_dir(f"yai-bench-{name}-") as directory,
        benchlib.EmulatorProcess(directory) as emu,
    ):
        seq = 0
        for rep in range(reps):
            for config in benchlib.rotated(configs, rep):
                seq += 1
                n = records(config)
                before = emu.accepted()
                emu_cpu = emu.cpu()
                expect = before + warmup + n
                run = ChildRun(config, emu.url, f"{name}-{seq}", n, expect, str(directory))
                out = benchlib.run_child(run.argv(script), timeout=900)
                out["emu_cpu_s"] = emu.cpu() - emu_cpu
                out["got"] = emu.accepted() - before - warmup if config not in SILENT else 0
                results[config].append(out)
                print(
                    f"  rep {rep + 1}/{reps} {config}: {n / out['total_s']:,.0f} rec/s, "
                    + progress(out, n),
                    file=sys.stderr,
                )
    return results, time.monotonic() - started
