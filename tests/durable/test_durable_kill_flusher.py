"""kill -9 of the FLUSHER while its PutLogs request is in flight.

A child process ships the spool; the emulator's hang fault holds its first request. The child
is SIGKILLed while the request is held; a new flusher (in the test process) must take the lock
(only once the child is dead), recover the orphaned lease and deliver everything. Duplicates
may come only from the batch that was in flight. (The child keeps up to ``max_in_flight``
requests in flight: the others are answered meanwhile, so the held batch is the only one left
leased when it dies; which batch that is depends on which request reached the server first.)
"""

from __future__ import annotations

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
