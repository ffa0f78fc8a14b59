"""How soon does delivery resume after a quota window, and how many requests did it cost?

Owns: the catch-up figure of README ("SLS quota errors"). A ``SpoolHandler`` with the default
retry policy (``max_age`` off) ships to the local emulator; the emulator answers every request
with ``WriteQuotaExceed`` for ``--window`` seconds while 200 records wait; then the quota
lifts. Reported per repetition: requests refused during the window, and the seconds from the
end of the window to the last record stored.

Nothing here is a test: no assertion on time.

Run: ``python benchmarks/bench_quota.py [--window 5] [--reps 3]`` (~20 s). To compare with
another checkout, copy this file and ``benchlib.py`` into its ``benchmarks/`` and run it there.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import benchlib

from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.shipping.retry import RetryPolicy

PROJECT, LOGSTORE = "bench-quota", "quota-store"


def once(directory: Path, window: float, rep: int) -> tuple[int, float]:
    with Emulator(EmulatorConfig(access_keys={"AK": "SK"})) as emu:
        handler = SpoolHandler(
            project=PROJECT,
            logstore=LOGSTORE,
            spool_path=directory / f"q{rep}.spool",
            endpoint=emu.url,
            access_key_id="AK",
            access_key_secret="SK",
            retry=RetryPolicy(max_age=None),
        )
        logger = benchlib.attach_logger(f"bench.quota.{rep}", handler)
        logger.info("warm-up")
        handler.flush_until(30)
        rule = emu.faults.fail_next(None, error_code="WriteQuotaExceed")
        for n in range(200):
            logger.info("record %d", n)
        threading.Event().wait(window)  # the quota window (the scenario)
        refused = emu.faults.fired().get("fail", 0)
        emu.faults.remove(rule)
        lifted = time.monotonic()
        while emu.count(PROJECT, LOGSTORE) < 201 and time.monotonic() - lifted < 60:
            time.sleep(0.005)  # a poll, measuring, not syncing
        caught_up = time.monotonic() - lifted
        handler.close()
        return refused, caught_up


def main() -> None:
    args = benchlib.begin("bench_quota", __doc__, window=5.0, reps=3)
    rows = []
    with tempfile.TemporaryDirectory(prefix="yai-spool-quota-") as tmp:
        for rep in range(args.reps):
            refused, caught_up = once(Path(tmp), args.window, rep)
            rows.append([rep + 1, f"{args.window:g} s", refused, f"{caught_up:.2f} s"])
    print(
        benchlib.table(
            ["rep", "quota window", "requests refused", "last record stored after"], rows
        )
    )


if __name__ == "__main__":
    main()
