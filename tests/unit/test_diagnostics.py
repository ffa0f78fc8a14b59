"""``yai_spool.diagnostics``: one line per event, rate-limited, the traceback only at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from yai_spool.diagnostics import INTERNAL_LOGGER, report_internal, reset_rate_limits


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Capture]:
    logger = logging.getLogger(INTERNAL_LOGGER)
    handler, level = Capture(), logger.level
    logger.addHandler(handler)
    reset_rate_limits()
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        reset_rate_limits()


def _failure() -> OSError:
    try:
        raise OSError(28, "No space left on device")
    except OSError as exc:
        return exc


def test_one_line_per_key_and_interval_with_a_count_of_the_rest(captured: Capture) -> None:
    logging.getLogger(INTERNAL_LOGGER).setLevel(logging.INFO)
    for _ in range(5):
        report_internal("k", logging.WARNING, "spool error on %s", "a.spool", exc=_failure())
    assert len(captured.records) == 1
    record = captured.records[0]
    assert (
        record.getMessage()
        == "spool error on a.spool (OSError: [Errno 28] No space left on device)"
    )
    assert record.exc_info is None  # no traceback unless the logger is at DEBUG
    report_internal("k", logging.WARNING, "spool error", exc=_failure(), interval=0.0)
    assert "4 similar events not reported" in captured.records[-1].getMessage()


def test_the_traceback_is_attached_at_debug(captured: Capture) -> None:
    logging.getLogger(INTERNAL_LOGGER).setLevel(logging.DEBUG)
    report_internal("d", logging.WARNING, "spool error", exc=_failure())
    assert captured.records[0].exc_info is not None
