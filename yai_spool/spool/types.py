"""Value types of the spool: configuration, states, drop reasons, batches and snapshots.

All are immutable (frozen dataclasses / enums) so they can be handed across threads and shown by
the CLI without copying. Validation happens in ``__post_init__`` and raises ``ValueError`` /
``TypeError`` (never ``assert``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

__all__ = [
    "Batch",
    "CheckpointResult",
    "DeadLetter",
    "DropReason",
    "LastError",
    "QueuedRecord",
    "RecordState",
    "SpoolConfig",
    "SpoolEvent",
    "SpoolStats",
    "Synchronous",
    "WhenFull",
]


class RecordState(StrEnum):
    """The state of a spooled record (see the module docstring of ``yai_spool.spool``)."""

    READY = "ready"
    LEASED = "leased"
    DEAD = "dead"


class WhenFull(StrEnum):
    """What ``append`` does when the spool is at ``max_records`` or ``max_bytes``."""

    DROP_OLDEST = "drop_oldest"  # evict the oldest DEAD, then the oldest READY records
    DROP_NEWEST = "drop_newest"  # refuse the new record (SpoolFull)
    BLOCK = "block"  # wait up to block_timeout for room, then drop it as "full_timeout"


class Synchronous(StrEnum):
    """SQLite ``PRAGMA synchronous`` in WAL mode (see the durability statement)."""

    NORMAL = "NORMAL"  # survives kill -9 of any process; power loss may lose the last commits
    FULL = "FULL"  # WAL fsynced on every commit: survives power loss / OS crash


class DropReason(StrEnum):
    """Why a record was dropped; every drop is counted under exactly one reason."""

    DROP_OLDEST = "drop_oldest"
    DROP_NEWEST = "drop_newest"
    FULL_TIMEOUT = "full_timeout"
    TOO_LARGE = "too_large"
    ENCODE_ERROR = "encode_error"
    DISK_FULL = "disk_full"
    DISK_ERROR = "disk_error"
    READONLY = "readonly"
    PERMISSION = "permission"
    BUSY = "busy"
    CORRUPT = "corrupt"


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    """Tunables of one spool handle (one process may open the same file with another config).

    Args:
        max_records: bound on READY + LEASED + DEAD records.
        max_bytes: bound on the sum of encoded record sizes (READY + LEASED + DEAD); the file is
            larger (SQLite pages, free pages after deletes, the WAL).
        when_full: ``drop_oldest`` (default), ``drop_newest`` or ``block``.
        block_timeout: seconds ``append`` may wait for room when ``when_full="block"``.
        max_record_bytes: one encoded record above this is dropped as ``too_large``.
        synchronous: ``NORMAL`` (default) or ``FULL``; see the durability statement.
        busy_timeout: seconds SQLite waits for another process's write lock before failing.
        wal_max_bytes: a producer checkpoints (PASSIVE) itself only when the WAL file is larger
            than this, i.e. when no flusher checkpoints; also the WAL size kept after a reset.
        integrity_check: ``"quick"`` runs ``PRAGMA quick_check`` at open (reads every page:
            cost grows with the file); ``"none"`` only detects a broken header/schema.
        refresh_every: appends between two refreshes of the in-memory size estimate.
        evict_slack: with drop_oldest, free this fraction of the limits beyond what the new
            record needs, so eviction runs once per many appends instead of on every append.
    """

    max_records: int = 1_000_000
    max_bytes: int = 256 * 1024 * 1024
    when_full: WhenFull = WhenFull.DROP_OLDEST
    block_timeout: float = 1.0
    max_record_bytes: int = 2 * 1024 * 1024
    synchronous: Synchronous = Synchronous.NORMAL
    busy_timeout: float = 5.0
    wal_max_bytes: int = 64 * 1024 * 1024
    integrity_check: str = "quick"
    refresh_every: int = 256
    evict_slack: float = 0.01

    def __post_init__(self) -> None:
        for name in ("max_records", "max_bytes", "max_record_bytes", "wal_max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"SpoolConfig.{name} must be an int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"SpoolConfig.{name} must be > 0, got {value}")
        if not isinstance(self.refresh_every, int) or self.refresh_every <= 0:
            raise ValueError(f"SpoolConfig.refresh_every must be an int > 0: {self.refresh_every}")
        # StrEnum(value) raises ValueError naming the bad value; store the enum member.
        object.__setattr__(self, "when_full", WhenFull(self.when_full))
        object.__setattr__(self, "synchronous", Synchronous(str(self.synchronous).upper()))
        if self.integrity_check not in ("quick", "none"):
            raise ValueError(
                f"SpoolConfig.integrity_check must be 'quick' or 'none': {self.integrity_check!r}"
            )
        for name in ("block_timeout", "busy_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value < 0:
                raise ValueError(f"SpoolConfig.{name} must be a number >= 0, got {value!r}")
        if not 0.0 <= self.evict_slack < 0.5:
            raise ValueError(f"SpoolConfig.evict_slack must be in [0, 0.5): {self.evict_slack}")


@dataclass(frozen=True, slots=True)
class Batch:
    """Records leased together: the oldest READY records of ONE destination, in id order.

    ``token`` identifies the lease; only the holder of the token (or of the ``Spool`` instance
    that leased it) can ack/release/dead-letter these ids while the lease is current.
    """

    token: str
    dest: str
    ids: tuple[int, ...]
    entries: tuple[Any, ...]
    attempts: tuple[int, ...]
    nbytes: int
    oldest_enqueued_at: float
    lease_until: float
    enqueued_at: tuple[float, ...] = ()  # per record, aligned with ids

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def max_attempts(self) -> int:
        """The highest attempt count of any record in the batch (0 = never tried)."""
        return max(self.attempts, default=0)


@dataclass(frozen=True, slots=True)
class QueuedRecord:
    """One READY or LEASED record, as the CLI lists it (``Spool.queued``)."""

    id: int
    state: RecordState
    dest: str
    entry: Any
    nbytes: int
    enqueued_at: float
    attempts: int
    error_code: str | None
    message: str | None
    request_id: str | None


@dataclass(frozen=True, slots=True)
class LastError:
    """The last delivery error the flusher reported."""

    code: str
    message: str
    request_id: str | None
    at: float
    status: int | None = None  # HTTP status of the answer; None when there was no answer


@dataclass(frozen=True, slots=True)
class SpoolEvent:
    """Something an operator must know about (quarantine, repaired file modes, ...)."""

    at: float
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One DEAD record, as the CLI lists it."""

    id: int
    original_id: int
    dest: str
    entry: Any
    nbytes: int
    enqueued_at: float
    attempts: int
    error_code: str | None
    message: str | None
    request_id: str | None
    dead_at: float


@dataclass(frozen=True, slots=True)
class CheckpointResult:
    """``PRAGMA wal_checkpoint`` outcome: ``busy`` is True if it could not finish."""

    busy: bool
    wal_frames: int
    checkpointed_frames: int


def _frozen_map(value: Mapping[str, int] | None = None) -> Mapping[str, int]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A consistent snapshot of one spool (one SQLite read transaction + file sizes).

    Record counts/bytes are exact. ``appended`` counts records accepted by ``append`` since the
    file was created (replays excluded). ``dropped`` maps drop reason -> count, including drops
    this process has counted in memory but not yet persisted (disk full, read-only).
    """

    path: str
    schema_version: int
    ready_records: int
    ready_bytes: int
    leased_records: int
    leased_bytes: int
    dead_records: int
    dead_bytes: int
    active_leases: int
    oldest_ready_enqueued_at: float | None
    oldest_ready_age: float | None
    appended: int
    delivered: int
    retried: int
    dead_lettered: int
    replayed: int
    purged: int
    throttled: int
    leases_recovered: int
    dropped: Mapping[str, int] = field(default_factory=_frozen_map)
    last_success_at: float | None = None
    last_success_request_id: str | None = None
    last_error: LastError | None = None
    file_bytes: int = 0
    wal_bytes: int = 0
    flusher_pid: int | None = None
    events: tuple[SpoolEvent, ...] = ()

    @property
    def total_records(self) -> int:
        """Records counted against ``max_records`` (READY + LEASED + DEAD)."""
        return self.ready_records + self.leased_records + self.dead_records

    @property
    def total_bytes(self) -> int:
        """Bytes counted against ``max_bytes`` (READY + LEASED + DEAD)."""
        return self.ready_bytes + self.leased_bytes + self.dead_bytes

    @property
    def dropped_total(self) -> int:
        """All drops, whatever the reason."""
        return sum(self.dropped.values())
