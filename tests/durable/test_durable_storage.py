"""The spool cannot be written (disk full, read-only): the application keeps running, the
failure is counted, and once the condition clears new records are stored and shipped.

Tests run as root here, so ``chmod`` cannot make anything unwritable; SQLite's own limits do
it instead, on the handler's real connection: ``PRAGMA max_page_count`` (SQLITE_FULL, a full
disk as SQLite sees it) and ``PRAGMA query_only`` (SQLITE_READONLY, a read-only file). Both
hit the flusher thread too, which shares the process's connection: it must survive.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    make_handler,
    make_logger,
    seq_counts,
    spool_totals,
    wait_until,
)

from yai_spool.emulator import Emulator
from yai_spool.handlers.durable import SpoolHandler


def set_condition(handler: SpoolHandler, condition: str, on: bool) -> None:
    spool = handler.spool
    with spool._lock:  # the connection is shared with the flusher thread
        conn = spool._store.conn  # type: ignore[union-attr]
        if condition == "disk_full":
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages if on else 1 << 30}")
        else:
            conn.execute(f"PRAGMA query_only = {1 if on else 0}")


@pytest.mark.parametrize("condition", ["disk_full", "readonly"])
def test_unwritable_spool_is_survived_and_counted(
    emu: Emulator, spool_path: Path, condition: str
) -> None:
    handler = make_handler(emu, spool_path, batch_size=20)
    errors: list[logging.LogRecord] = []
    handler.handleError = errors.append  # type: ignore[method-assign]
    logger = make_logger(f"durable.storage.{condition}", handler)

    emu.faults.fail_next(None, error_code="ServerBusy")  # keep records in the spool for now
    for seq in range(50):
        logger.info("before %d", seq, extra={"seq": seq})
    assert wait_until(lambda: handler.stats()["flusher"]["consecutive_failures"] > 0)

    set_condition(handler, condition, True)
    for seq in range(1000, 1300):
        logger.info("during %d", seq, extra={"seq": seq})  # must not raise
    dropped = handler.spool.stats().dropped.get(condition, 0)
    assert dropped > 0  # counted under its reason (in memory while the file is unwritable)
    if condition == "readonly":
        assert dropped == 300
        # The flusher thread hit the read-only spool too (lease is a write) and lives on.
        assert wait_until(
            lambda: handler.stats()["flusher"]["last_outcome"] == "spool_error", timeout=10
        )
    assert handler._flusher is not None
    assert handler._flusher.running

    set_condition(handler, condition, False)
    for seq in range(2000, 2050):
        logger.info("after %d", seq, extra={"seq": seq})
    emu.faults.clear()  # the link is back: everything that was stored ships
    stored_during = 300 - dropped
    total = 50 + stored_during + 50
    assert emu.wait_for_count(PROJECT, LOGSTORE, total, timeout=30)
    assert wait_until(lambda: spool_totals(spool_path)[:2] == (0, 0))
    stats = handler.spool.stats()
    handler.close()

    assert errors == []  # a counted drop, never a logging error
    assert stats.dropped.get(condition, 0) == dropped  # persisted once writable again
    counts = seq_counts(emu)
    during = [s for s in counts if 1000 <= s < 1300]
    assert len(during) == stored_during
    assert_exactly_once(emu, [*range(50), *during, *range(2000, 2050)])


def test_a_failed_ack_does_not_strand_the_batch(emu: Emulator, spool_path: Path) -> None:
    """SLS accepted a batch but the ack cannot be written: the batch is not stuck LEASED
    until its lease expires (minutes); it is released and resent once the spool heals."""
    emu.faults.hang(n=1)
    handler = make_handler(emu, spool_path, batch_size=20)
    logger = make_logger("durable.storage.ack", handler)
    for seq in range(20):
        logger.info("record %d", seq, extra={"seq": seq})
    assert emu.faults.wait_held(1, timeout=30)
    in_flight = spool_totals(spool_path)[1]
    assert in_flight > 0

    set_condition(handler, "readonly", True)
    emu.faults.clear()  # the held request is answered 200; its ack hits a read-only spool
    assert emu.wait_for_count(PROJECT, LOGSTORE, in_flight, timeout=30)
    assert wait_until(lambda: handler.stats()["flusher"]["last_outcome"] == "spool_error")
    set_condition(handler, "readonly", False)

    # Delivered again (at least once) and settled long before a 300 s lease could expire.
    assert wait_until(lambda: spool_totals(spool_path) == (0, 0, 0))
    assert emu.wait_for_count(PROJECT, LOGSTORE, 20 + in_flight, timeout=30)
    handler.close()
    counts = seq_counts(emu)
    assert set(counts) == set(range(20))
    assert sum(counts.values()) == 20 + in_flight  # duplicates: that one batch only
