"""The one retry layer: an immutable policy value and pure decisions about waiting.

Owns: how long a flusher waits after an outcome, and when a record is too old to keep
retrying. Nothing here sleeps or does I/O; the caller waits on its own stop event
(``threading.Event.wait`` in a thread, ``asyncio.wait_for(stop.wait(), delay)`` in a
task), so every wait is interruptible (style.md, principle 1 and 12).

Invariants:
- ``RetryPolicy`` is frozen and validated; one ``DEFAULT_RETRY`` is shared by every flusher.
- Delays are *full jitter*: uniform in ``[0, min(cap, base * 2**(n-1)))``. Full jitter
  spreads many workers restarted together (gunicorn reload, an SLS outage ending) so
  they do not retry in lockstep; it is what the official Rust producer does.
- The outcome classes come from :func:`yai_spool.sls.errors.classify_response` only; this
  module maps an outcome to a wait, never an SLS error code to anything.
- There are no attempt limits: a record leaves the spool by delivery, by dead-lettering
  when SLS rejects it, or by exceeding ``max_age`` (dead-lettered too). Counting attempts
  to give up is how the peers lose data during long outages (anchors.md §1).
- Quota errors (THROTTLED) probe soon, then politely: for the first ``throttle_patience``
  seconds of a run of failures the waits are capped at ``throttle_cap`` (1 s), so delivery
  resumes within about a second of a short quota window ending; after that the cap is
  ``throttle_long_cap`` (10 s), so an hour of quota costs a few hundred requests, not
  thousands (each one carries a whole batch). A server's ``Retry-After`` hint replaces the
  computed wait (clamped to ``retry_after_max``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from yai_spool.sls.errors import Outcome

__all__ = ["DEFAULT_RETRY", "Backoff", "RetryPolicy"]


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"RetryPolicy.{name} must be > 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a flusher waits after each kind of outcome.

    Attributes:
        base: first retry delay cap for transient failures (5xx, timeouts, resets).
        cap: largest delay for transient failures.
        throttle_base: first delay after a quota error (WriteQuotaExceed, ...). Quota
            errors slow the send rate; they are not failures of the data.
        throttle_cap: largest delay after quota errors during the first
            ``throttle_patience`` seconds of a run of failures (quota windows are often
            seconds: probe soon).
        throttle_patience: seconds of failures after which quota errors wait up to
            ``throttle_long_cap`` instead.
        throttle_long_cap: largest delay after that (a long quota: do not hammer it).
        retry_after_max: the longest server ``Retry-After`` hint honoured.
        credentials_base: first delay after a credentials/config error (bad key,
            missing logstore). The data is kept; someone has to fix the configuration.
        credentials_cap: largest delay after credentials/config errors.
        max_age: seconds a record may wait in the spool before it is dead-lettered
            (``None`` keeps records forever). LoongCollector discards after 6 h; we
            dead-letter instead so ``yai-spool replay`` can still send them.
    """

    base: float = 0.2
    cap: float = 30.0
    throttle_base: float = 0.25
    throttle_cap: float = 1.0
    throttle_patience: float = 60.0
    throttle_long_cap: float = 10.0
    retry_after_max: float = 60.0
    credentials_base: float = 5.0
    credentials_cap: float = 300.0
    max_age: float | None = 6 * 3600.0

    def __post_init__(self) -> None:
        for name in ("base", "cap", "throttle_base", "throttle_cap", "throttle_long_cap"):
            _positive(name, getattr(self, name))
        if not self.throttle_patience >= 0:
            raise ValueError("RetryPolicy.throttle_patience must be >= 0")
        if not self.retry_after_max >= 0:
            raise ValueError("RetryPolicy.retry_after_max must be >= 0")
        _positive("credentials_base", self.credentials_base)
        _positive("credentials_cap", self.credentials_cap)
        if self.cap < self.base:
            raise ValueError("RetryPolicy.cap must be >= base")
        if self.throttle_cap < self.throttle_base:
            raise ValueError("RetryPolicy.throttle_cap must be >= throttle_base")
        if self.throttle_long_cap < self.throttle_cap:
            raise ValueError("RetryPolicy.throttle_long_cap must be >= throttle_cap")
        if self.credentials_cap < self.credentials_base:
            raise ValueError("RetryPolicy.credentials_cap must be >= credentials_base")
        if self.max_age is not None:
            _positive("max_age", self.max_age)

    def ceiling(self, outcome: Outcome, failures: int, elapsed: float = 0.0) -> float:
        """Upper bound of the jittered delay after ``failures`` consecutive failures that
        started ``elapsed`` seconds ago."""
        if failures <= 0 or outcome is Outcome.DELIVERED:
            return 0.0
        if outcome is Outcome.THROTTLED:
            base = self.throttle_base
            patient = elapsed < self.throttle_patience
            cap = self.throttle_cap if patient else self.throttle_long_cap
        elif outcome is Outcome.CREDENTIALS:
            base, cap = self.credentials_base, self.credentials_cap
        else:
            base, cap = self.base, self.cap
        # Cap the exponent first: 2**failures overflows floats after ~1000 failures.
        return min(cap, base * 2.0 ** min(failures - 1, 64))

    def delay(
        self, outcome: Outcome, failures: int, rng: random.Random, elapsed: float = 0.0
    ) -> float:
        """Full-jitter delay before the next attempt (0 after a delivery)."""
        ceiling = self.ceiling(outcome, failures, elapsed)
        return rng.uniform(0.0, ceiling) if ceiling else 0.0

    def is_expired(self, enqueued_at: float, now: float) -> bool:
        """True when a record enqueued at ``enqueued_at`` (wall clock) is past max_age."""
        return self.max_age is not None and now - enqueued_at > self.max_age


DEFAULT_RETRY = RetryPolicy()


@dataclass(slots=True)
class Backoff:
    """Mutable per-flusher state over a :class:`RetryPolicy`: consecutive failures.

    Kept apart from the policy so the policy stays a shareable value. A delivery resets
    the count; a different failure class continues it (an outage that turns from 503
    into timeouts is still one outage).
    """

    policy: RetryPolicy = DEFAULT_RETRY
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0
    last_outcome: Outcome = Outcome.DELIVERED
    clock: Callable[[], float] = time.monotonic
    failing_since: float | None = None  # clock() at the first failure of the current run

    def next_delay(self, outcome: Outcome, retry_after: float | None = None) -> float:
        """Record ``outcome`` and return how long to wait before trying again.

        ``retry_after``: the server's hint for this failure, used instead of the computed
        delay (clamped to ``policy.retry_after_max``).
        """
        self.last_outcome = outcome
        if outcome is Outcome.DELIVERED:
            self.failures = 0
            self.failing_since = None
            return 0.0
        if outcome is Outcome.REJECTED:
            # Rejected data is dead-lettered right away; the link itself is fine.
            return 0.0
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.policy.retry_after_max)
        return self.policy.delay(outcome, self.failures, self.rng, now - self.failing_since)
