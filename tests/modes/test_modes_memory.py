"""MemoryQueueHandler against the emulator: the shared batching flusher over a bounded queue."""

from __future__ import annotations

import logging
import threading

import pytest
from modes_support import (
    DEADLINE,
    FAST_RETRY,
    LOGSTORE,
    PROJECT,
    destination,
    log_numbered,
    make_logger,
    messages,
    stored,
)

from yai_spool import MemoryQueueHandler
from yai_spool.emulator import Emulator
from yai_spool.handlers.context import bind, propagate
from yai_spool.testing import wait_until


def memory_handler(emu: Emulator, **options: object) -> MemoryQueueHandler:
    settings: dict[str, object] = {
        "batch_size": 50,
        "linger": 0.01,
        "retry": FAST_RETRY,
        "flush_timeout": DEADLINE,
        "close_timeout": 5.0,
        **options,
    }
    return MemoryQueueHandler(**destination(emu, **settings))  # type: ignore[arg-type]


def test_records_ship_in_batches_with_their_context(emu: Emulator) -> None:
    handler = memory_handler(emu)
    logger = make_logger(handler)
    with bind(trace_id="main-trace"):
        for i in range(120):
            logger.info("record %d", i, extra={"seq": i})
        # A thread started with the caller's context: its records carry the trace id too.
        worker = threading.Thread(target=propagate(lambda: logger.info("from a thread")))
        worker.start()
        worker.join(DEADLINE)
    assert handler.flush_until(DEADLINE)
    logs = stored(emu)
    assert sorted(int(log.text("seq") or -1) for log in logs if log.text("seq")) == list(range(120))
    assert {log.text("trace_id") for log in logs} == {"main-trace"}
    assert len(emu.requests()) < 121 // 2  # batched, not one request per record
    stats = handler.stats()
    assert stats["mode"] == "memory+thread"
    assert (stats["spool"].delivered, stats["spool"].dropped) == (121, {})
    handler.close()


def test_an_outage_is_retried_until_delivered(emu: Emulator) -> None:
    handler = memory_handler(emu)
    logger = make_logger(handler)
    emu.faults.fail_next(3, error_code="ServerBusy", status=503)
    log_numbered(logger, "through the storm", 30)
    # Each flush answers after one attempt; the third attempt after the faults succeeds.
    assert wait_until(lambda: handler.flush_until(1.0), DEADLINE)
    assert emu.count(PROJECT, LOGSTORE) == 30
    stats = handler.stats()
    assert stats["spool"].retried >= 30  # the refused batch went back and came again
    assert stats["flusher"]["retried"] >= 1
    handler.close()


def test_link_down_flush_answers_false_and_records_wait(emu: Emulator) -> None:
    handler = memory_handler(emu, timeouts=1.0)
    logger = make_logger(handler)
    emu.faults.down()
    log_numbered(logger, "queued", 10)
    assert not handler.flush_until(DEADLINE)  # a failed attempt answers, not the timeout
    assert handler.stats()["spool"].ready_records + handler.stats()["spool"].leased_records == 10
    emu.faults.up()
    assert wait_until(lambda: handler.flush_until(1.0), DEADLINE)
    assert len(messages(emu)) == 10
    handler.close()


def test_close_during_an_outage_is_bounded_and_counts_the_loss(
    emu: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    handler = memory_handler(emu, close_timeout=0.2, timeouts=0.5)
    logger = make_logger(handler)
    emu.faults.down()
    log_numbered(logger, "doomed", 25)
    with caplog.at_level(logging.WARNING, logger="yai_spool.internal"):
        handler.close()  # returns: the drain gives up at its deadline
    stats = handler.stats()["spool"]
    assert stats.dropped == {"unsent_at_close": 25}
    assert "25 records were still queued in memory at close" in caplog.text
    logger.info("after close")  # never raises; counted
    assert handler.stats()["spool"].dropped["closed"] == 1
    emu.faults.up()
    assert emu.count(PROJECT, LOGSTORE) == 0


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
def test_a_full_queue_drops_by_policy_and_counts(emu: Emulator, policy: str) -> None:
    handler = memory_handler(emu, max_queue_records=10, when_full=policy, timeouts=0.5)
    logger = make_logger(handler)
    emu.faults.down()
    log_numbered(logger, "n", 30)
    stats = handler.stats()["spool"]
    assert stats.ready_records + stats.leased_records == 10
    assert sum(stats.dropped.values()) == 20
    assert set(stats.dropped) == {policy}
    emu.faults.up()
    assert wait_until(lambda: handler.flush_until(1.0), DEADLINE)
    got = [int(m.split()[1]) for m in messages(emu)]
    if policy == "drop_newest":
        assert got == list(range(10))
    else:  # the newest survive (plus whatever was leased when the queue filled)
        assert got[-1] == 29
        assert len(got) == 10
    handler.close()


def test_block_waits_for_the_flusher_to_make_room(emu: Emulator) -> None:
    handler = memory_handler(emu, max_queue_records=5, when_full="block", block_timeout=DEADLINE)
    logger = make_logger(handler)
    for i in range(40):  # more than the queue holds: emit waits for deliveries
        logger.info("patient %d", i)
    assert handler.flush_until(DEADLINE)
    assert messages(emu) == [f"patient {i}" for i in range(40)]
    assert handler.stats()["spool"].dropped == {}
    handler.close()


def test_a_poison_record_is_dead_lettered_in_memory(emu: Emulator) -> None:
    handler = memory_handler(emu)
    logger = make_logger(handler)
    emu.faults.poison({"key": "message", "contains": "POISON"})
    for i in range(8):
        logger.info("POISON" if i == 5 else f"good {i}")
    assert handler.flush_until(DEADLINE)
    assert len(messages(emu)) == 7
    dead = handler.spool.dead_letters()
    assert [d.entry["contents"][0][1] for d in dead] == ["POISON"]
    assert dead[0].error_code == "InvalidParameter"
    handler.close()


def test_own_and_shipping_path_records_are_not_queued(emu: Emulator) -> None:
    handler = memory_handler(emu)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # httpx debug records of the flusher thread reach root
    try:
        logging.getLogger("app").info("only me")
        logging.getLogger("yai_spool.internal").warning("not me")
        assert handler.flush_until(DEADLINE)
    finally:
        root.removeHandler(handler)
    assert messages(emu) == ["only me"]
    handler.close()
