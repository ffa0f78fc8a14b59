"""kill -9 at the worst moments: of a producer mid-append, of the flusher mid-request.

Producer, killed at random moments: every record whose emit() returned survives.

The child logs numbered records with ``flusher="none"`` and prints each number only after
``emit`` returned. The parent SIGKILLs it after a random number of printed records (so the
kill lands at a random point of the child's append path, including mid-commit), several
times in a row on the same spool file. Then one flusher drains the spool to the emulator and
every number any child printed must be there, exactly once (no flusher died, so there is no
excuse for duplicates), and nothing that no child tried to log.

Flusher, killed while its PutLogs request is in flight:

A child process ships the spool; the emulator's hang fault holds its first request. The child
is SIGKILLed while the request is held; a new flusher (in the test process) must take the lock
(only once the child is dead), recover the orphaned lease and deliver everything. Duplicates
may come only from the batch that was in flight. (The child keeps up to ``max_in_flight``
requests in flight: the others are answered meanwhile, so the held batch is the only one left
leased when it dies; which batch that is depends on which request reached the server first.)
"""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path

import pytest
from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    kill9,
    read_line,
    reap,
    seq_counts,
    spawn_child,
    spool_totals,
    start_flusher,
    wait_until,
)

from yai_spool.emulator import Emulator
from yai_spool.spool import Spool
from yai_spool.spool.destination import encode_dest

# -- a producer killed mid-append ------------------------------------------------------------

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


# -- the flusher killed mid-request ----------------------------------------------------------

N = 1000
BATCH = 50
DEST = encode_dest(PROJECT, LOGSTORE, "", "kill-test")


def fill(path: Path) -> None:
    with Spool(path) as spool:
        entries = (
            {"time": 1_700_000_000, "time_ns": 0, "contents": [["seq", str(s)], ["message", "m"]]}
            for s in range(N)
        )
        assert spool.append_many(entries, dest=DEST) == N


def start_child_flusher(emu: Emulator, path: Path) -> subprocess.Popen[bytes]:
    child = spawn_child("flusher", path, emu.url, BATCH)
    assert read_line(child) == "flusher"
    return child


@pytest.mark.slow
@pytest.mark.parametrize("answered", [False, True], ids=["request-abandoned", "answer-unread"])
def test_kill9_flusher_mid_request(emu: Emulator, spool_path: Path, answered: bool) -> None:
    fill(spool_path)
    emu.faults.hang(n=1)
    child = start_child_flusher(emu, spool_path)
    try:
        assert emu.faults.wait_held(1, timeout=30)
        # Pipelining ships everything else around the held request; only it stays leased.
        assert wait_until(lambda: spool_totals(spool_path) == (0, BATCH, 0))
        # Which batch is held depends on which of the pipelined requests reached the server
        # first: it is the one batch SLS has not stored while everything else is acked.
        held = sorted(set(range(N)) - set(seq_counts(emu)))
        assert len(held) == BATCH
        assert held == list(range(held[0], held[0] + BATCH))  # one lease: a FIFO run

        with Spool(spool_path) as spool:
            # While the child lives, nobody else may ship this spool.
            assert not spool.acquire_flusher()
            assert spool.flusher_pid() == child.pid

            if answered:
                # The worst moment: SLS stored the batch and answered 200, but the flusher
                # dies before it can ack. Freeze the child, let the server answer, then kill.
                child.send_signal(signal.SIGSTOP)
                emu.faults.clear()
                assert emu.wait_for_count(PROJECT, LOGSTORE, N, timeout=30)
            kill9(child)

            flusher = start_flusher(spool, emu, batch=BATCH)
            try:
                assert wait_until(lambda: spool.stats().leases_recovered >= BATCH)
                expected_total = N + (BATCH if answered else 0)
                assert emu.wait_for_count(PROJECT, LOGSTORE, expected_total, timeout=30), (
                    flusher.stats.snapshot(),
                    emu.counters(),
                    emu.faults.active(),
                    spool.stats(),
                )
                assert wait_until(lambda: spool_totals(spool_path) == (0, 0, 0))
            finally:
                flusher.stop(5)
    finally:
        reap(child)

    counts = seq_counts(emu)
    assert set(counts) == set(range(N))
    dups = sorted(s for s, n in counts.items() if n > 1)
    if answered:
        # Exactly the in-flight batch arrived twice.
        assert dups == held
        assert max(counts.values()) == 2
    else:
        assert_exactly_once(emu, range(N))
    # The emulator notices the dead client of a held request within its hang poll interval.
    abandoned = 0 if answered else 1
    assert wait_until(
        lambda: [r.outcome for r in emu.requests(PROJECT, LOGSTORE)].count("abandoned") == abandoned
    )
