"""kill -9 of a producer at random moments: every record whose emit() returned survives.

The child logs numbered records with ``flusher="none"`` and prints each number only after
``emit`` returned. The parent SIGKILLs it after a random number of printed records (so the
kill lands at a random point of the child's append path, including mid-commit), several
times in a row on the same spool file. Then one flusher drains the spool to the emulator and
every number any child printed must be there, exactly once (no flusher died, so there is no
excuse for duplicates), and nothing that no child tried to log.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from durable_support import (
    LOGSTORE,
    PROJECT,
    kill9,
    read_line,
    reap,
    seq_counts,
    spawn_child,
    spool_totals,
    start_flusher,
)

from yai_spool.emulator import Emulator
from yai_spool.spool import Spool

ITERATIONS = 10
PER_CHILD = 100_000  # far more than a child can log before it is killed
STRIDE = 1_000_000  # child i logs i*STRIDE .. i*STRIDE + PER_CHILD - 1


@pytest.mark.slow
def test_kill9_producer_in_a_loop_loses_no_acknowledged_record(
    emu: Emulator, spool_path: Path
) -> None:
    rng = random.Random(20261128)
    reported: set[int] = set()
    attempted: set[int] = set()
    for i in range(ITERATIONS):
        start = i * STRIDE
        child = spawn_child("produce", spool_path, start, PER_CHILD)
        try:
            assert read_line(child) == "ready"
            kill_after = rng.choice([0, 1, 7, 50, 300, 1000, 2500])
            seen = 0
            while seen < kill_after:
                reported.add(int(read_line(child)))
                seen += 1
            kill9(child)
            # Numbers already in the pipe were printed after their emit returned: they count.
            assert child.stdout is not None
            tail = child.stdout.read().decode().split()
            reported.update(int(x) for x in tail if x.isdigit())
            attempted.update(range(start, start + PER_CHILD))
        finally:
            reap(child)

    ready, leased, dead = spool_totals(spool_path)
    assert leased == 0
    assert dead == 0
    assert ready >= len(reported)

    with Spool(spool_path) as spool:
        flusher = start_flusher(spool, emu, batch=500)
        try:
            assert emu.wait_for_count(PROJECT, LOGSTORE, ready, timeout=60)
        finally:
            flusher.stop(5)
    counts = seq_counts(emu)
    missing = sorted(reported - set(counts))
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:10]}"
    assert set(counts) <= attempted
    assert max(counts.values()) == 1, "a record was delivered twice"
    assert sum(counts.values()) == ready  # what was on disk is exactly what arrived
    assert spool_totals(spool_path) == (0, 0, 0)
