"""Value types of the spool: configuration, states, drop reasons, batches and snapshots.

All are immutable (frozen dataclasses / enums) so they can be handed across threads and shown by
the CLI without copying. Validation happens in ``__post_init__`` and raises ``ValueError`` /
``TypeError`` (never ``assert``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import FrozenInstanceError, dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from yai_spool.sls.encoding import encode_entry_log
from yai_spool.spool.schema import CODEC_LOG, decode_stored

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
        wal_max_bytes: the WAL file size kept after a restart (``journal_size_limit``); a
            producer that sees the WAL larger than this (the housekeeper's checkpoints could
            not catch up with a sustained burst) catches up itself, so the WAL restarts.
        integrity_check: ``"quick"`` runs ``PRAGMA quick_check`` at open (reads every page:
            cost grows with the file); ``"none"`` only detects a broken header/schema.
        refresh_every: appends between two refreshes of the in-memory size estimate.
        evict_slack: with drop_oldest, free this fraction of the limits beyond what the new
            record needs, so eviction runs once per many appends instead of on every append.
        max_txn_rows: records per write transaction of ``lease``/``ack``/``release``/
            ``dead_letter``; a bigger call is split into several transactions, so a producer
            never waits longer than one chunk for the write lock (~0.6 ms for 256 records).
    """

    max_records: int = 1_000_000
    max_bytes: int = 256 * 1024 * 1024
    when_full: WhenFull = WhenFull.DROP_OLDEST
    block_timeout: float = 1.0
    max_record_bytes: int = 2 * 1024 * 1024
    synchronous: Synchronous = Synchronous.NORMAL
    busy_timeout: float = 5.0
    wal_max_bytes: int = 8 * 1024 * 1024
    integrity_check: str = "quick"
    refresh_every: int = 256
    evict_slack: float = 0.01
    max_txn_rows: int = 256

    def __post_init__(self) -> None:
        for name in ("max_records", "max_bytes", "max_record_bytes", "wal_max_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"SpoolConfig.{name} must be an int, got {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"SpoolConfig.{name} must be > 0, got {value}")
        for name in ("refresh_every", "max_txn_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SpoolConfig.{name} must be an int > 0: {value!r}")
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


class Batch:
    """Records leased together: the oldest READY records of ONE destination, in id order.

    ``token`` identifies the lease; only the holder of the token (or of the ``Spool`` instance
    that leased it) can ack/release/dead-letter these ids while the lease is current.

    The records travel as ``logs``: their stored logs (one ``LogGroup.Logs`` field each, see
    ``schema``) concatenated in id order, so the PutLogs body is ``logs`` plus a trailer and
    nothing is decoded or encoded on the way (``encoding.join_logs``). ``log_sizes`` are
    their lengths in ``logs``; ``sizes`` the sizes the spool accounts for each record (equal,
    except for records a v1 spool stored as JSON). ``entries`` decodes them on first access
    (the CLI, tests); a batch built from entries (``Batch(..., entries)``) encodes ``logs``
    on first access instead.

    ``batch[i:j]`` and ``batch.select(positions)`` are batches of the same lease (same token)
    holding a part of the records, e.g. the halves of a bisection; settling a part moves only
    its ids. A contiguous part's ``logs`` is a slice, not a re-encoding. Immutable, like the
    other value types.
    """

    __slots__ = (
        "_entries",
        "_logs",
        "_offsets",
        "attempts",
        "dest",
        "enqueued_at",
        "ids",
        "lease_until",
        "log_sizes",
        "nbytes",
        "oldest_enqueued_at",
        "sizes",
        "token",
    )
    _entries: tuple[Any, ...] | None  # decoded (or given) entries, filled on first access
    _logs: bytes | None  # None only for an entries-built batch not encoded yet
    _offsets: list[int] | None  # start offset of each record in ``logs``, plus the end
    token: str
    dest: str
    ids: tuple[int, ...]
    attempts: tuple[int, ...]
    nbytes: int
    oldest_enqueued_at: float
    lease_until: float
    enqueued_at: tuple[float, ...]  # per record, aligned with ids
    sizes: tuple[int, ...] | None  # accounted size per record (durable spool), else None
    log_sizes: tuple[int, ...] | None  # length of each record in ``logs``

    def __init__(  # noqa: PLR0917 - keeps the positional order of the former dataclass
        self,
        token: str,
        dest: str,
        ids: tuple[int, ...],
        entries: tuple[Any, ...] | None = None,
        attempts: tuple[int, ...] = (),
        nbytes: int = 0,
        oldest_enqueued_at: float = 0.0,
        lease_until: float = 0.0,
        enqueued_at: tuple[float, ...] = (),
        *,
        logs: bytes | None = None,
        sizes: tuple[int, ...] | None = None,
        log_sizes: tuple[int, ...] | None = None,
    ) -> None:
        if entries is None and logs is None:
            raise TypeError("Batch needs entries or logs")
        if logs is not None and log_sizes is None:
            log_sizes = sizes
        if logs is not None and (log_sizes is None or sum(log_sizes) != len(logs)):
            raise ValueError("Batch.logs needs log_sizes (or sizes) that add up to its length")
        for name, value in (("entries", entries), ("sizes", sizes), ("log_sizes", log_sizes)):
            if value is not None and len(value) != len(ids):
                raise ValueError(f"Batch.{name} must be aligned with ids")
        init = object.__setattr__
        init(self, "token", token)
        init(self, "dest", dest)
        init(self, "ids", tuple(ids))
        init(self, "_entries", None if entries is None else tuple(entries))
        init(self, "_logs", logs)
        init(self, "_offsets", None)
        init(self, "attempts", tuple(attempts))
        init(self, "nbytes", nbytes)
        init(self, "oldest_enqueued_at", oldest_enqueued_at)
        init(self, "lease_until", lease_until)
        init(self, "enqueued_at", tuple(enqueued_at))
        init(self, "sizes", None if sizes is None else tuple(sizes))
        init(self, "log_sizes", None if log_sizes is None else tuple(log_sizes))

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __repr__(self) -> str:
        span = f"{self.ids[0]}..{self.ids[-1]}" if self.ids else "-"
        return (
            f"Batch(token={self.token!r}, dest={self.dest!r}, records={len(self.ids)}, "
            f"ids={span}, nbytes={self.nbytes})"
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def max_attempts(self) -> int:
        """The highest attempt count of any record in the batch (0 = never tried)."""
        return max(self.attempts, default=0)

    @property
    def logs(self) -> bytes:
        """The stored logs of every record, concatenated in id order (the body minus trailer).

        Raises:
            EncodeError (a ValueError): an entry of an entries-built batch cannot be encoded.
        """
        logs = self._logs
        if logs is None:
            pieces = [encode_entry_log(e) for e in self._entries or ()]
            logs = b"".join(pieces)
            object.__setattr__(self, "_logs", logs)
            object.__setattr__(self, "log_sizes", tuple(map(len, pieces)))
        return logs

    def _bounds(self) -> list[int]:
        """Start offsets of each record in ``logs``, plus the end."""
        offsets = self._offsets
        if offsets is None:
            self.logs  # noqa: B018 - fills log_sizes for an entries-built batch
            offsets = [0, *itertools.accumulate(self.log_sizes or ())]
            object.__setattr__(self, "_offsets", offsets)
        return offsets

    def log_of(self, position: int) -> bytes:
        """The stored log of the record at ``position``."""
        bounds = self._bounds()
        return self.logs[bounds[position] : bounds[position + 1]]

    @property
    def entries(self) -> tuple[Any, ...]:
        """The decoded entries (decoded once, on first access, from ``logs``).

        Raises:
            ValueError: a stored log does not decode (``lease`` already parks such records).
        """
        entries = self._entries
        if entries is None:
            entries = tuple(self.iter_entries())
            object.__setattr__(self, "_entries", entries)
        return entries

    def iter_entries(self) -> Iterator[Any]:
        """The entries one at a time: decoded as iterated (logs) or the held ones (entries)."""
        if self._entries is not None:
            return iter(self._entries)
        return (decode_stored(self.log_of(i), CODEC_LOG) for i in range(len(self.ids)))

    def select(self, positions: Iterable[int]) -> Batch:
        """The records at ``positions`` (indexes into this batch, kept in the given order)."""
        pos = list(positions)
        ids = tuple(self.ids[p] for p in pos)
        sizes = None if self.sizes is None else tuple(self.sizes[p] for p in pos)
        entries = None
        if self._entries is not None:
            entries = tuple(self._entries[p] for p in pos)
        logs = log_sizes = None
        if self._logs is not None:
            bounds = self._bounds()
            if pos and pos == list(range(pos[0], pos[-1] + 1)):
                logs = self._logs[bounds[pos[0]] : bounds[pos[-1] + 1]]
            else:
                logs = b"".join(self._logs[bounds[p] : bounds[p + 1]] for p in pos)
            log_sizes = tuple(bounds[p + 1] - bounds[p] for p in pos)
        enqueued = tuple(self.enqueued_at[p] for p in pos) if self.enqueued_at else ()
        return Batch(
            self.token,
            self.dest,
            ids,
            entries,
            tuple(self.attempts[p] for p in pos),
            _part_bytes(self, sizes, entries, pos),
            min(enqueued, default=self.oldest_enqueued_at),
            self.lease_until,
            enqueued,
            logs=logs,
            sizes=sizes,
            log_sizes=log_sizes,
        )

    def __getitem__(self, part: slice) -> Batch:
        if not isinstance(part, slice):
            raise TypeError("Batch indexes take a slice (batch[i:j]); use select() for positions")
        return self.select(range(*part.indices(len(self.ids))))


def _part_bytes(
    batch: Batch, sizes: tuple[int, ...] | None, entries: tuple[Any, ...] | None, pos: list[int]
) -> int:
    """Accounted bytes of a part of ``batch``: exact with sizes, else re-measured from entries."""
    if sizes is not None:
        return sum(sizes)
    if len(pos) == len(batch.ids):
        return batch.nbytes
    return sum(len(encode_entry_log(e)) for e in (entries if entries is not None else ()))


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
    counted in memory but not yet persisted (disk full, read-only), by this process and, via
    the ledger, by other processes writing the spool; ``last_drop_at`` is the newest of them.

    Units: ``appended``, ``delivered``, ``retried`` (records given back to READY after a
    failed attempt, whatever the failure), ``dead_lettered``, ``replayed``, ``purged``,
    ``leases_recovered`` and ``dropped`` count **records**; ``retry_requests`` (PutLogs requests
    that failed and gave their records back: transient, throttled or credentials errors) and
    ``throttled_requests`` (the subset answered with a quota error) count **requests**.
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
    throttled_requests: int
    leases_recovered: int
    dropped: Mapping[str, int] = field(default_factory=_frozen_map)
    last_drop_at: float | None = None
    retry_requests: int = 0
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

    @property
    def throttled(self) -> int:
        """Deprecated alias of ``throttled_requests`` (it always counted requests)."""
        return self.throttled_requests
