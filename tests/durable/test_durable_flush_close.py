"""flush() and close(): bounded, never stopping the flusher, never losing what is on disk.

Bounds are asserted as *fractions of the configured timeouts* (flush must answer "well before"
its timeout when the link fails; close "in about" close_timeout), not as speed figures.
"""

from __future__ import annotations

import time
from pathlib import Path

from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    client,
    emit_range,
    make_handler,
    spool_totals,
)

from yai_spool.emulator import Emulator
from yai_spool.shipping.retry import RetryPolicy

FLUSH_TIMEOUT = 4.0


def test_flush_returns_true_after_delivery(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, linger=5.0)  # flush must not wait for the linger
    emit_range(handler, 0, 250)
    assert handler.flush_until(30) is True
    assert emu.count(PROJECT, LOGSTORE) == 250  # delivered when flush returned, not later
    assert spool_totals(spool_path) == (0, 0, 0)
    handler.flush()  # the logging.Handler API: returns None, same semantics
    handler.close()
    assert_exactly_once(emu, range(250))


def test_flush_right_after_the_first_emit(emu: Emulator, spool_path: Path) -> None:
    """The flusher thread is brand new: flush must not mistake it for a standby flusher."""
    for n in range(5):
        path = spool_path.with_name(f"fresh-{n}.spool")
        handler = make_handler(emu, path)
        emit_range(handler, n, n + 1)
        assert handler.flush_until(30) is True
        handler.close()
    assert_exactly_once(emu, range(5))


def test_flush_fails_fast_during_an_outage(emu: Emulator, spool_path: Path) -> None:
    # Backoff of up to 20 s between attempts: flush must not sit it out (nor its own timeout);
    # it asks the flusher for one attempt now and answers with that attempt's outcome.
    handler = make_handler(emu, spool_path, retry=RetryPolicy(base=10.0, cap=20.0, max_age=None))
    emit_range(handler, 0, 100)
    assert handler.flush_until(30)

    emu.faults.fail_next(None, error_code="ServerBusy")
    emit_range(handler, 100, 200)
    for _ in range(3):  # the first failure, then again and again deep in the backoff
        started = time.monotonic()
        assert handler.flush_until(FLUSH_TIMEOUT) is False
        assert time.monotonic() - started < FLUSH_TIMEOUT / 2
    assert handler.stats()["flusher"]["consecutive_failures"] >= 3
    assert sum(spool_totals(spool_path)[:2]) == 100  # the failed records wait on disk

    emu.faults.clear()
    assert handler.flush_until(30) is True  # the link is back: flush cuts the backoff short
    handler.close()
    assert_exactly_once(emu, range(200))


def test_flush_never_stops_the_flusher(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path)
    emit_range(handler, 0, 100)
    assert handler.flush_until(30) is True
    emit_range(handler, 100, 200)  # after a successful flush (the SDK's flush stops its worker)
    assert emu.wait_for_count(PROJECT, LOGSTORE, 200, timeout=30)

    emu.faults.fail_next(None, error_code="ServerBusy")
    emit_range(handler, 200, 300)
    assert handler.flush_until(30) is False
    emu.faults.clear()
    emit_range(handler, 300, 400)
    # No flush() from here on: the flusher thread kept running and ships on its own.
    assert emu.wait_for_count(PROJECT, LOGSTORE, 400, timeout=30)
    assert handler.stats()["flusher"]["is_flusher"]
    handler.close()
    assert_exactly_once(emu, range(400))


def test_close_is_idempotent_and_flush_after_close_is_harmless(
    emu: Emulator, spool_path: Path
) -> None:
    handler = make_handler(emu, spool_path)
    emit_range(handler, 0, 10)
    handler.close()
    handler.close()
    assert handler.flush_until(1) is False  # logging.shutdown() may still call flush()
    handler.flush()
    assert_exactly_once(emu, range(10))  # close drained what was spooled


def test_close_is_bounded_while_the_server_is_down(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, close_timeout=1.0)
    emit_range(handler, 0, 50)
    assert handler.flush_until(30)
    emu.down()
    emit_range(handler, 50, 550)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 1.0 + 3  # close_timeout (+ the join margin)
    assert spool_totals(spool_path)[:2] == (500, 0)  # all of it still on disk, none leased

    emu.up()
    restarted = make_handler(emu, spool_path)
    assert restarted.flush_until(30)  # no new record needed: leftovers ship on flush()
    restarted.close()
    assert_exactly_once(emu, range(550))


def test_close_is_bounded_while_a_request_hangs(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(
        emu,
        spool_path,
        close_timeout=0.5,
        sender_factory=lambda: client(emu, connect=5, read=60, write=60, total=60),
    )
    emu.faults.hang(n=1)
    emit_range(handler, 0, 100)
    assert emu.faults.wait_held(1, timeout=30)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 0.5 + 3
    ready, leased, _ = spool_totals(spool_path)
    assert ready + leased == 100  # the held batch is still leased by the stuck thread

    emu.faults.clear()  # the stuck request completes; its ack hits a closed spool
    restarted = make_handler(emu, spool_path)
    assert restarted.flush_until(30)  # recovers the orphaned lease and sends the rest
    restarted.close()
    counts = {}
    for log in emu.logs(PROJECT, LOGSTORE):
        seq = int(log.get("seq") or b"-1")
        counts[seq] = counts.get(seq, 0) + 1
    assert set(counts) == set(range(100))
    assert sum(n - 1 for n in counts.values()) <= 100  # duplicates: the in-flight batch only
    assert spool_totals(spool_path) == (0, 0, 0)
