"""The flusher's settings and counters: two plain values every driver shares.

Owns :class:`FlusherConfig` (how batches are formed and how a loop paces itself, validated
once at construction) and :class:`FlusherStats` (the in-process counters of one flusher,
kept by ``ShipCycle`` and the driver that runs it). Both are data: no I/O, no locks.

Invariants: a ``FlusherConfig`` is frozen and always within the SLS limits it documents;
``FlusherStats`` uses the names and units of the spool's durable counters (``SpoolStats``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yai_spool.shipping.retry import DEFAULT_RETRY, RetryPolicy

__all__ = ["FlusherConfig", "FlusherStats"]

_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FlusherConfig:
    """How batches are formed and how the loop paces itself.

    Args:
        max_batch_records: records per PutLogs request (the producers' default, 4096).
        max_batch_bytes: spooled bytes per request. The spool stores compact JSON, which is
            a little larger than the protobuf it becomes, so 4 MiB keeps every request well
            under the 10 MB raw-body limit of PutLogs while leaving room for big records.
        linger: seconds to wait for more records before sending a batch that is not full.
        poll_interval: seconds between looks at the spool when nothing woke the flusher
            (records appended by other processes) and between standby lock attempts.
        lease_seconds: a batch lease outlives any single request by far; if this flusher
            dies the next one recovers the lease at once through the flusher lock.
        checkpoint_interval: seconds between WAL checkpoints (kept off producers' threads).
        max_in_flight: PutLogs requests in flight at once (the next batch is leased and sent
            while earlier ones wait for SLS); 1 sends one batch at a time.
        retry: the backoff policy.
        project, logstore: override the destination names stored in the spool rows (the
            daemon's per-spool configuration); ``None`` keeps them.
        topic: override of the LogGroup topic stored with the rows; ``None`` keeps it
            ("" is a real override: no topic).
    """

    max_batch_records: int = 4096
    max_batch_bytes: int = 4 * _MiB
    linger: float = 0.5
    poll_interval: float = 1.0
    lease_seconds: float = 300.0
    checkpoint_interval: float = 1.0
    max_in_flight: int = 2
    retry: RetryPolicy = DEFAULT_RETRY
    project: str | None = None
    logstore: str | None = None
    topic: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_records <= 40_960:
            raise ValueError("FlusherConfig.max_batch_records must be in 1..40960 (SLS cap)")
        if not 1024 <= self.max_batch_bytes <= 8 * _MiB:
            raise ValueError(
                "FlusherConfig.max_batch_bytes must be in 1 KiB..8 MiB "
                "(headroom under the 10 MB PutLogs limit)"
            )
        for name in ("linger", "checkpoint_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"FlusherConfig.{name} must be >= 0")
        for name in ("poll_interval", "lease_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"FlusherConfig.{name} must be > 0")
        if not 1 <= self.max_in_flight <= 64:
            raise ValueError("FlusherConfig.max_in_flight must be in 1..64")


@dataclass(slots=True)
class FlusherStats:
    """In-process counters of one flusher (the spool keeps the durable ones).

    Same names and units as the spool's counters (``SpoolStats``): ``delivered``,
    ``retried`` (records given back after a failed attempt, whatever the failure), ``dead``,
    ``expired`` count **records**; ``requests`` (PutLogs requests sent), ``retry_requests``
    (requests that failed and gave their records back), ``throttled_requests`` and
    ``credential_error_requests`` (subsets of ``retry_requests``) and ``bisections`` count
    **requests**.

    ``in_flight`` is a gauge: PutLogs requests sent and not answered yet (a plan suspended
    at its ``yield``), maintained by ``ShipCycle`` for every driver.
    """

    requests: int = 0
    in_flight: int = 0
    delivered: int = 0
    retried: int = 0
    retry_requests: int = 0
    throttled_requests: int = 0
    credential_error_requests: int = 0
    dead: int = 0
    expired: int = 0
    bisections: int = 0
    last_outcome: str = ""
    last_error_code: str = ""
    last_success_at: float | None = None
    consecutive_failures: int = 0
    is_flusher: bool = False

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}
