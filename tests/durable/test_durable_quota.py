"""Quota errors: probe soon, catch up fast after a short window, honour a Retry-After hint.

Against the emulator's real HTTP fault injection. The catch-up bound asserted is the one the
throttle schedule promises (``RetryPolicy.throttle_cap``, 1 s, plus one request and a linger),
not a speed figure of this machine.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from durable_support import LOGSTORE, PROJECT, make_handler, make_logger, wait_until

from yai_spool.emulator import Emulator
from yai_spool.shipping.retry import Backoff, RetryPolicy
from yai_spool.sls.errors import Outcome

#: Default throttle schedule, no expiry (the test decides when the quota lifts).
DEFAULTS = RetryPolicy(max_age=None)


def test_delivery_resumes_within_two_seconds_of_a_five_second_quota_window(
    emu: Emulator, spool_path: Path
) -> None:
    handler = make_handler(emu, spool_path, retry=DEFAULTS)
    logger = make_logger("durable.quota", handler)
    for seq in range(50):
        logger.info("record %d", seq, extra={"seq": seq})
    assert handler.flush_until(30)

    rule = emu.faults.fail_next(None, error_code="WriteQuotaExceed")
    for seq in range(50, 250):
        logger.info("record %d", seq, extra={"seq": seq})
    threading.Event().wait(5.0)  # the quota window itself (the scenario, not a sync point)
    throttled = handler.stats()["flusher"]["throttled_requests"]
    emu.faults.remove(rule)
    lifted = time.monotonic()
    assert wait_until(lambda: emu.count(PROJECT, LOGSTORE) >= 250, timeout=30)
    caught_up = time.monotonic() - lifted
    spool = handler.stats()["spool"]
    handler.close()

    assert throttled >= 4  # it kept probing during the window (the old cap: 6 in all)
    assert caught_up <= 2.0, f"delivery resumed {caught_up:.2f}s after the quota lifted"
    assert spool.throttled_requests == throttled  # one name, one unit: requests
    assert spool.retried >= throttled  # records given back (each request carried some)
    assert spool.dropped_total == 0
    assert spool.dead_records == 0


def test_a_long_quota_is_probed_politely() -> None:
    """After ``throttle_patience`` seconds of quota the cap grows to ``throttle_long_cap``: an
    hour of quota costs hundreds of requests (each with a whole batch), not thousands."""
    policy = DEFAULTS
    assert policy.ceiling(Outcome.THROTTLED, 50, elapsed=5.0) == policy.throttle_cap == 1.0
    assert policy.ceiling(Outcome.THROTTLED, 50, elapsed=policy.throttle_patience) == 10.0
    now = [0.0]
    backoff = Backoff(policy, clock=lambda: now[0])
    early = [backoff.next_delay(Outcome.THROTTLED) for _ in range(200)]  # many batches at once
    assert max(early) <= 1.0
    now[0] = policy.throttle_patience + 1
    late = [backoff.next_delay(Outcome.THROTTLED) for _ in range(200)]
    assert max(late) > 1.0
    assert max(late) <= 10.0
    assert backoff.next_delay(Outcome.DELIVERED) == 0.0
    assert backoff.failing_since is None  # a delivery ends the run


def test_a_retry_after_hint_replaces_a_long_backoff(emu: Emulator, spool_path: Path) -> None:
    # Without the hint the second attempt would wait up to 30 s (then 60 s).
    slow = RetryPolicy(base=30.0, cap=60.0, max_age=None)
    handler = make_handler(emu, spool_path, retry=slow)
    logger = make_logger("durable.quota.hint", handler)
    emu.faults.fail_next(2, error_code="ServerBusy", retry_after=0.05)
    for seq in range(20):
        logger.info("record %d", seq, extra={"seq": seq})
    assert wait_until(lambda: emu.count(PROJECT, LOGSTORE) >= 20, timeout=15)
    assert handler.stats()["flusher"]["retry_requests"] == 2
    handler.close()
