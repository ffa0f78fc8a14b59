"""SyncSLSHandler against the emulator: one request per record, bounded, never raises."""

from __future__ import annotations

import logging
import random

import pytest
from modes_support import FAST_RETRY, destination, log_numbered, make_logger, messages, stored

from yai_spool import SyncSLSHandler
from yai_spool.emulator import Emulator
from yai_spool.handlers.context import bind


def sync_handler(emu: Emulator, **options: object) -> SyncSLSHandler:
    settings: dict[str, object] = {"retry": FAST_RETRY, "timeout": 2.0, **options}
    return SyncSLSHandler(**destination(emu, **settings))  # type: ignore[arg-type]


def test_each_record_is_sent_before_emit_returns(emu: Emulator) -> None:
    handler = sync_handler(emu, topic="web", tags={"env": "test"})
    logger = make_logger(handler)
    with bind(trace_id="t-123"):
        logger.info("paid %d EUR", 12, extra={"order_id": "o-1"})
    assert len(stored(emu)) == 1  # no waiting: it is there already
    logger.warning("second", extra={"sls_topic": "billing"})
    logs = stored(emu)
    assert [log.text("message") for log in logs] == ["paid 12 EUR", "second"]
    first, second = logs
    assert (first.text("order_id"), first.text("trace_id"), first.text("levelname")) == (
        "o-1",
        "t-123",
        "INFO",
    )
    assert (first.topic, second.topic, first.source) == ("web", "billing", "test-host")
    assert dict(first.tags) == {"env": "test"}
    assert len(emu.requests()) == 2
    assert handler.stats()["delivered"] == 2
    handler.close()


def test_outage_is_counted_reported_and_backs_off(
    emu: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = sync_handler(emu)
    logger = make_logger(handler)
    emu.faults.fail_next(1, error_code="ServerBusy", status=503)
    logger.info("refused")  # 503: counted, handleError, never raised
    assert "--- Logging error ---" in capsys.readouterr().err
    stats = handler.stats()
    assert stats["failed"] == {"retry": 1}
    assert stats["last_error_code"] == "ServerBusy"
    assert stats["consecutive_failures"] == 1
    # The link recovered; the next record goes out (a backoff window may drop a few first).
    for i in range(1000):
        logger.info("after %d", i)
        if len(stored(emu)):
            break
    stats = handler.stats()
    assert stats["delivered"] == 1
    assert stats["consecutive_failures"] == 0
    assert stats["dropped"].get("backoff", 0) == i  # everything before it was counted
    handler.close()


def test_link_down_costs_one_attempt_then_drops_are_counted(emu: Emulator) -> None:
    # Seeded jitter: the first backoff is a fixed draw from [0, 30) s, far longer than the loop.
    handler = sync_handler(
        emu, retry={"base": 30.0, "cap": 60.0}, timeout=1.0, rng=random.Random(7)
    )
    logger = make_logger(handler)
    emu.faults.down()
    logging.raiseExceptions, saved = False, logging.raiseExceptions
    try:
        log_numbered(logger, "while down", 20)
    finally:
        logging.raiseExceptions = saved
    stats = handler.stats()
    assert stats["failed"] == {"retry": 1}  # one connect attempt ...
    assert stats["dropped"] == {"backoff": 19}  # ... then the backoff window drops at once
    emu.faults.up()
    handler.close()


def test_every_record_tried_when_asked_and_poison_does_not_back_off(emu: Emulator) -> None:
    handler = sync_handler(emu, skip_while_backing_off=False)
    logger = make_logger(handler)
    emu.faults.poison({"key": "message", "contains": "POISON"})
    logging.raiseExceptions, saved = False, logging.raiseExceptions
    try:
        logger.info("POISON pill")
        emu.faults.fail_next(1, error_code="InternalServerError", status=500)
        logger.info("lost to a 500")
        logger.info("fine")
    finally:
        logging.raiseExceptions = saved
    assert messages(emu) == ["fine"]
    stats = handler.stats()
    assert stats["failed"] == {"rejected": 1, "retry": 1}
    assert stats["dropped"] == {}
    handler.close()


def test_records_logged_while_sending_do_not_recurse(emu: Emulator) -> None:
    handler = sync_handler(emu)
    root = logging.getLogger()
    root.addHandler(handler)  # httpx/httpcore debug records of the send reach it too
    root.setLevel(logging.DEBUG)
    try:
        logging.getLogger("app").info("one record")
    finally:
        root.removeHandler(handler)
    assert messages(emu) == ["one record"]
    handler.close()


def test_a_hung_server_costs_at_most_the_timeout(emu: Emulator) -> None:
    handler = sync_handler(emu, timeout=0.3)
    logger = make_logger(handler)
    emu.faults.hang()
    logging.raiseExceptions, saved = False, logging.raiseExceptions
    try:
        logger.info("into the void")  # returns: the total deadline ends the request
    finally:
        logging.raiseExceptions = saved
    assert handler.stats()["failed"] == {"retry": 1}
    assert handler.stats()["last_error_code"] == "RequestTimeout"
    emu.faults.clear()
    handler.close()
