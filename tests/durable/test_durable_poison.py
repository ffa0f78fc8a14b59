"""A record SLS refuses (400 InvalidParameter) is dead-lettered alone; its neighbours arrive."""

from __future__ import annotations

from pathlib import Path

import pytest
from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    make_handler,
    make_logger,
    spool_totals,
    wait_until,
)

from yai_spool.emulator import Emulator
from yai_spool.emulator.store import StoredLog
from yai_spool.spool import DeadLetter, Spool, SpoolStats

N = 500
POISON_SEQ = 257


def is_poison(log: StoredLog) -> bool:
    return b"POISON" in (log.get("message") or b"")


@pytest.mark.parametrize("form", ["spec", "predicate"])
def test_only_the_poison_record_is_dead_lettered(
    emu: Emulator, spool_path: Path, form: str
) -> None:
    emu.faults.poison({"key": "message", "contains": "POISON"} if form == "spec" else is_poison)
    handler = make_handler(emu, spool_path, batch_size=100)
    logger = make_logger("durable.poison", handler)
    for seq in range(N):
        text = "POISON pill" if seq == POISON_SEQ else "fine"
        logger.info("%s %d", text, seq, extra={"seq": seq})

    assert emu.wait_for_count(PROJECT, LOGSTORE, N - 1, timeout=30)
    # The neighbours are in; the poison is settled within the same ship cycle.
    assert wait_until(lambda: spool_totals(spool_path) == (0, 0, 1))
    handler.close()

    assert_exactly_once(emu, [s for s in range(N) if s != POISON_SEQ])
    stats_after = _stats(spool_path)
    assert stats_after.dead_records == 1
    assert stats_after.ready_records == stats_after.leased_records == 0
    assert stats_after.delivered == N - 1
    [letter] = _dead(spool_path)
    assert dict(letter.entry["contents"])["seq"] == str(POISON_SEQ)
    assert letter.error_code == "InvalidParameter"
    poisoned = {r.request_id for r in emu.requests(PROJECT, LOGSTORE) if r.outcome == "poisoned"}
    assert letter.request_id in poisoned  # the request id of SLS's answer to that record
    assert emu.count(PROJECT, LOGSTORE) == N - 1


def _stats(path: Path) -> SpoolStats:
    with Spool.open_readonly(path) as ro:
        return ro.stats()


def _dead(path: Path) -> list[DeadLetter]:
    with Spool.open_readonly(path) as ro:
        return ro.dead_letters(10)
