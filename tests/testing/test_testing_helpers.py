"""``yai_spool.testing`` without pytest fixtures: matchers, records, the context manager,
``attached`` and ``wait_until``."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from yai_spool.testing import (
    ABSENT,
    ANY,
    DeliveredRecord,
    SLSEmulator,
    attached,
    contains,
    fast_retry,
    regex,
    wait_until,
)


def test_matchers_decide_per_field() -> None:
    """Equality, ANY, ABSENT, regex (full match), contains, compiled patterns, predicates."""
    rec = DeliveredRecord({"message": "paid 12 EUR", "levelname": "INFO"})
    assert rec.matches(message="paid 12 EUR", levelname=ANY, trace_id=ABSENT)
    assert not rec.matches(trace_id=ANY)
    assert not rec.matches(levelname=ABSENT)
    assert rec.matches(message=regex(r"paid \d+ EUR"))
    assert not rec.matches(message=regex(r"paid"))  # full match, not search
    assert rec.matches(message=contains("12"), levelname=re.compile("I.*"))
    assert rec.matches({"message": lambda v: v.endswith("EUR")})
    assert not rec.matches(message="paid 13 EUR")
    assert repr(regex("a+")) == "regex('a+')"
    assert repr(contains("x")) == "contains('x')"


def test_a_delivered_record_is_a_read_only_mapping_of_text() -> None:
    """It compares with a dict of its fields; missing keys behave like a dict's."""
    rec = DeliveredRecord({"message": "hi", "n": "1"}, topic="t")
    assert rec == {"message": "hi", "n": "1"}
    assert rec.get("absent") is None
    assert dict(rec) == {"message": "hi", "n": "1"}
    with pytest.raises(KeyError):
        _ = rec["absent"]


def test_running_emulator_without_pytest_ships_and_cleans_up() -> None:
    """The context manager: a real handler, records as text, everything closed at exit."""
    with SLSEmulator.running(project="kit-project", logstore="kit-store") as sls:
        handler = sls.handler()
        with attached("kit.plain", handler) as log:
            log.warning("from a plain script", extra={"free_mb": 120, "ratio": 0.5})
        [rec] = sls.wait_for(1, message="from a plain script")
        assert rec["free_mb"] == "120"
        assert rec["ratio"] == "0.5"
        assert (rec.project, rec.logstore) == ("kit-project", "kit-store")
        assert sls.access_key_secret not in repr(sls)
        assert sls.env()["YAI_SPOOL_ENDPOINT"] == sls.url
    assert not sls.emulator.is_up
    assert handler._closed  # type: ignore[attr-defined]  # closed (drained) by the emulator's exit


def test_wait_for_counts_only_matching_records(sls_emulator: SLSEmulator) -> None:
    """``wait_for(n, **fields)`` waits for n *matching* records, not n records."""
    with attached("kit.count", sls_emulator.handler()) as log:
        for i in range(6):
            log.warning("item %d", i, extra={"parity": "even" if i % 2 == 0 else "odd"})
    odd = sls_emulator.wait_for(3, parity="odd")
    assert [r["message"] for r in odd] == ["item 1", "item 3", "item 5"]
    with pytest.raises(AssertionError, match="expected 4 record"):
        sls_emulator.wait_for(4, parity="odd", timeout=0.2)


def test_fast_retry_retries_every_failure_class_within_its_cap() -> None:
    """``fast_retry``: 10 ms first waits for every failure class, ``cap`` at most, no expiry."""
    policy = fast_retry(cap=0.05)
    assert (policy.base, policy.throttle_base, policy.credentials_base) == (0.01, 0.01, 0.01)
    assert (policy.cap, policy.throttle_cap, policy.credentials_cap) == (0.05, 0.05, 0.05)
    assert policy.max_age is None
    assert fast_retry().cap == fast_retry().throttle_cap == fast_retry().credentials_cap == 0.1


def test_a_kit_handler_retries_fast_and_keeps_its_spool_in_spool_dir(tmp_path: Path) -> None:
    """``handler()`` defaults: ``fast_retry()`` and a spool file under ``spool_dir``."""
    with SLSEmulator.running(spool_dir=tmp_path) as sls:
        handler = sls.handler()
        assert handler._flusher_config.retry == fast_retry()  # type: ignore[attr-defined]
        assert Path(handler.spool_path).parent == tmp_path  # type: ignore[attr-defined]
        assert sls.spool_dir == tmp_path


def test_attached_holds_the_handler_for_the_block_only() -> None:
    """The logger (by name or object) gets the handler and the level, then both go back."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("kit.attached")
    log.setLevel(logging.ERROR)
    with attached("kit.attached", handler) as got:
        assert got is log
        assert handler in log.handlers
        assert log.level == logging.INFO
        log.info("inside")
        log.debug("below the level")
    assert handler not in log.handlers
    assert log.level == logging.ERROR
    log.error("after the block")
    with attached(log, handler, level="DEBUG"):
        log.debug("debug now")
    assert seen == ["inside", "debug now"]
    log.setLevel(logging.NOTSET)


def test_wait_until_polls_until_true_or_the_deadline() -> None:
    """True as soon as the predicate holds; False after ``timeout``, checked at the end."""
    calls: list[float] = []

    def third_time() -> bool:
        calls.append(time.monotonic())
        return len(calls) >= 3

    assert wait_until(third_time, timeout=5.0, interval=0.001)
    assert len(calls) == 3
    start = time.monotonic()
    never: list[int] = []
    assert not wait_until(lambda: never.append(1), timeout=0.05, interval=0.01)
    assert time.monotonic() - start >= 0.05
    assert len(never) >= 2  # the first look, and the one at the deadline
    assert wait_until(lambda: "truthy", timeout=0.0)
