"""What both spool backends do alike, written once so the memory spool cannot drift.

Owns the parts of the ``SpoolBackend`` contract (``backend.py``) that do not depend on where
records live: argument validation (``append_log``'s types, ``lease``'s bounds, checkpoint
modes), turning an entry into its stored log, naming the ids a settle acts on, and what a
``release`` counts. ``core.Spool`` (SQLite) and ``memory.MemorySpool`` both call these; pure
functions, no I/O, no state.

Hot path: ``append_log`` keeps its type test inline (one comparison per record) and calls
``append_type_error`` only to build the error of a caller bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from yai_spool.spool.exceptions import SpoolEncodeError
from yai_spool.spool.schema import encode_stored
from yai_spool.spool.types import Batch

__all__ = [
    "CHECKPOINT_MODES",
    "ENCODE_FAILURES",
    "append_type_error",
    "check_lease_args",
    "checkpoint_mode",
    "encode_error",
    "release_counts",
    "settle_ids",
    "stored_entry",
]

#: The modes of ``PRAGMA wal_checkpoint`` that ``checkpoint()`` takes (on every backend: a
#: typo must not pass in memory and fail on disk).
CHECKPOINT_MODES: Final = frozenset({"PASSIVE", "FULL", "RESTART", "TRUNCATE"})
#: What encoding an entry that cannot be stored raises (counted as ``encode_error``).
ENCODE_FAILURES: Final = (TypeError, ValueError, KeyError, RecursionError)


def append_type_error(data: object, dest: object) -> TypeError:
    """``append_log`` was given something else than bytes and a str dest (not counted)."""
    return TypeError(
        f"append_log needs bytes and a str dest, got {type(data).__name__}, {type(dest).__name__}"
    )


def check_lease_args(max_records: int, max_bytes: int, lease_seconds: float) -> None:
    """``lease`` bounds: at least one record and one byte, a lease that lasts."""
    if max_records < 1 or max_bytes < 1 or lease_seconds <= 0:
        raise ValueError("lease needs max_records >= 1, max_bytes >= 1, lease_seconds > 0")


def checkpoint_mode(mode: str) -> str:
    """``mode`` upper-cased, or ``ValueError`` if ``PRAGMA wal_checkpoint`` has no such mode."""
    mode = mode.upper()
    if mode not in CHECKPOINT_MODES:
        raise ValueError(f"checkpoint mode must be one of {sorted(CHECKPOINT_MODES)}")
    return mode


def encode_error(exc: BaseException) -> SpoolEncodeError:
    """The error ``append`` raises for an entry that cannot be encoded (already counted)."""
    return SpoolEncodeError(f"entry cannot be stored: {type(exc).__name__}: {exc}")


def stored_entry(entry: Mapping[str, Any]) -> tuple[bytes, int]:
    """``(stored log, unix second)`` of a mapper entry; raises one of ``ENCODE_FAILURES``."""
    return encode_stored(entry), int(entry["time"])


def settle_ids(target: Batch | Iterable[int]) -> tuple[list[int], str | None]:
    """(distinct ids in id order, lease token or None): settling order is always id order."""
    if isinstance(target, Batch):
        return sorted(set(target.ids)), target.token
    return sorted({int(i) for i in target}), None


def release_counts(n: int, *, failed: bool, throttled: bool) -> dict[str, int]:
    """Counter deltas of one ``release`` call that gave back ``n`` records.

    Units: ``retried`` counts records given back; ``retry_requests`` / ``throttled_requests``
    count the PutLogs request whose failure (``failed``: an error code was given) gave them
    back, once per call.
    """
    return {
        "retried": n,
        "retry_requests": 1 if failed else 0,
        "throttled_requests": 1 if failed and throttled else 0,
    }
