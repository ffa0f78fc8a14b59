"""Exits against an SLS that never answers: bounded, no thread left, nothing lost, no traceback.

The endpoint is a real TCP listener on 127.0.0.1 that accepts and never answers (a firewall
black hole, an overloaded load balancer). ``logging.shutdown()`` (flush, then close) must
return within ``close_timeout`` plus the documented grace, leave no thread of the handler
alive and print no traceback; the batches cancelled at the deadline stay leased in the spool
and a later flusher delivers them (at least once). The bound asserted is the documented one
(README "Guarantees"), not a speed figure.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from durable_support import (
    BlackHole,
    client,
    make_handler,
    make_logger,
    read_line,
    reap,
    seq_counts,
    spawn_child,
    spool_totals,
    wait_until,
)

from yai_spool.emulator import Emulator

#: The documented margin of the shutdown bound (flusher.ABANDON_GRACE plus closing the spool).
MARGIN = 0.2


def _handler_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("yai-spool")]


def test_logging_shutdown_is_bounded_against_a_black_hole(emu: Emulator, spool_path: Path) -> None:
    close_timeout = 1.0
    with BlackHole() as hole:
        child = spawn_child("shutdown", spool_path, hole.url, close_timeout, 400)
        try:
            report = json.loads(read_line(child))
            child.wait(timeout=30)
            stderr = child.stderr.read().decode() if child.stderr else ""
        finally:
            reap(child)
        assert hole.accepted.is_set()
    assert "error" not in report, report
    # flush() and close() share close_timeout; before, they took flush_timeout + close_timeout
    # + 1 s (11 s with the defaults).
    assert report["seconds"] <= close_timeout + MARGIN, report
    assert report["alive"] == [], report  # no flusher, request or housekeeping thread left
    assert "Traceback" not in stderr, stderr
    assert child.returncode == 0, stderr
    ready, leased, _ = spool_totals(spool_path)
    assert ready + leased == 400  # nothing lost, nothing acked
    assert leased > 0  # the cancelled request's batch stays leased for the next flusher

    restarted = make_handler(emu, spool_path)
    assert restarted.flush_until(30)  # recovers the lease, ships everything
    restarted.close()
    counts = seq_counts(emu)
    assert set(counts) == set(range(400))
    assert spool_totals(spool_path) == (0, 0, 0)


def test_close_cancels_a_request_in_flight_and_leaves_no_thread(
    emu: Emulator, spool_path: Path
) -> None:
    with BlackHole() as hole:
        handler = make_handler(emu, spool_path, endpoint=hole.url, close_timeout=0.5)
        logger = make_logger("durable.shutdown.close", handler)
        for seq in range(100):
            logger.info("record %d", seq, extra={"seq": seq})
        assert hole.accepted.wait(30)
        assert wait_until(lambda: spool_totals(spool_path)[1] > 0)
        started = time.monotonic()
        handler.close()
        took = time.monotonic() - started
        assert _handler_threads() == []
    assert took <= 0.5 + MARGIN
    assert sum(spool_totals(spool_path)[:2]) == 100


def test_a_slow_sink_cannot_stretch_close_or_touch_a_closed_spool(
    emu: Emulator, spool_path: Path
) -> None:
    """SLS answers after 2 s: close() still returns at its deadline, and the late answer
    cannot reach the spool (before: SpoolClosedError traceback and duplicates)."""
    handler = make_handler(
        emu,
        spool_path,
        close_timeout=0.5,
        sender_factory=lambda: client(emu, connect=5, read=60, write=60, total=60),
    )
    logger = make_logger("durable.shutdown.slow", handler)
    for seq in range(50):
        logger.info("record %d", seq, extra={"seq": seq})
    assert handler.flush_until(30)
    emu.faults.latency(2.0)
    for seq in range(50, 150):
        logger.info("record %d", seq, extra={"seq": seq})
    assert wait_until(lambda: spool_totals(spool_path)[1] > 0)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started <= 0.5 + MARGIN
    assert _handler_threads() == []
    emu.faults.clear()

    restarted = make_handler(emu, spool_path)
    assert restarted.flush_until(30)
    restarted.close()
    counts = seq_counts(emu)
    assert set(counts) == set(range(150))
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= 100  # at most the batches cancelled in flight
    assert spool_totals(spool_path) == (0, 0, 0)
