"""A full spool under each ``when_full`` policy: counted drops, no exceptions, right survivors."""

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
)

from yai_spool.emulator import Emulator
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.spool import Spool

CAP = 20
N = 50


def surviving_seqs(path: Path) -> list[int]:
    with Spool(path) as spool:
        batch = spool.lease(1000, 8 << 20, lease_seconds=60)
        assert batch is not None
        seqs = [int(dict(e["contents"])["seq"]) for e in batch.entries]
        spool.release(batch)
    return seqs


def no_handle_error(handler: SpoolHandler) -> list[logging.LogRecord]:
    """Record handleError calls instead of printing: a drop must not be an 'error'."""
    calls: list[logging.LogRecord] = []
    handler.handleError = calls.append  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize(
    ("policy", "survivors", "reason"),
    [
        ("drop_oldest", list(range(N - CAP, N)), "drop_oldest"),
        ("drop_newest", list(range(CAP)), "drop_newest"),
        ("block", list(range(CAP)), "full_timeout"),
    ],
)
def test_full_spool_policy(
    spool_path: Path, policy: str, survivors: list[int], reason: str
) -> None:
    handler = make_handler(
        None, spool_path, max_spool_records=CAP, when_full=policy, block_timeout=0.02
    )
    errors = no_handle_error(handler)
    logger = make_logger(f"durable.full.{policy}", handler)
    for seq in range(N):
        logger.info("record %d", seq, extra={"seq": seq})  # never raises
    stats = handler.spool.stats()
    handler.close()

    assert errors == []
    assert dict(stats.dropped) == {reason: N - CAP}
    assert stats.ready_records == CAP
    assert surviving_seqs(spool_path) == survivors


def test_block_waits_for_the_flusher_to_make_room(emu: Emulator, spool_path: Path) -> None:
    """With a live flusher, ``block`` turns a full spool into back-pressure, not loss."""
    handler = make_handler(
        emu, spool_path, max_spool_records=CAP, when_full="block", block_timeout=30, batch_size=10
    )
    errors = no_handle_error(handler)
    logger = make_logger("durable.full.backpressure", handler)
    for seq in range(500):
        logger.info("record %d", seq, extra={"seq": seq})
    assert emu.wait_for_count(PROJECT, LOGSTORE, 500, timeout=30)
    stats = handler.spool.stats()
    handler.close()
    assert errors == []
    assert dict(stats.dropped) == {}
    assert_exactly_once(emu, range(500))
