"""Exceptions raised by the spool (``yai_spool.spool``).

Tree (hangs under :class:`yai_spool.sls.errors.YaiSpoolError`)::

    SpoolError(YaiSpoolError)
    ├── SpoolStorageError            SQLite or the filesystem failed; ``reason`` says how
    │   ├── SpoolPermissionError     the file/directory cannot be opened or its mode is unsafe
    │   ├── SpoolCorruptError        the file is corrupt and could not be quarantined
    │   ├── SpoolSchemaError         the file is not a yai-spool spool, or is from a newer version
    │   └── SpoolReadOnlyError       a write was attempted through ``Spool.open_readonly``
    ├── SpoolDropped                 ``append`` did NOT store the record (already counted)
    │   ├── SpoolFull                drop_newest / full_timeout
    │   ├── SpoolRecordTooLarge      too_large
    │   ├── SpoolEncodeError         encode_error (also a ValueError)
    │   └── SpoolAppendStorageError  storage failure during append (also a SpoolStorageError)
    └── SpoolClosedError             the spool was closed

Invariant: every ``SpoolDropped`` means the record is not in the spool **and** the drop has been
counted under ``reason`` (persisted, or kept in memory and persisted at the next successful
write). The caller must not count it again; it only decides whether to report it.
"""

from __future__ import annotations

import errno
import sqlite3

from yai_spool.sls.errors import YaiSpoolError

__all__ = [
    "SpoolAppendStorageError",
    "SpoolClosedError",
    "SpoolCorruptError",
    "SpoolDropped",
    "SpoolEncodeError",
    "SpoolError",
    "SpoolFull",
    "SpoolPermissionError",
    "SpoolReadOnlyError",
    "SpoolRecordTooLarge",
    "SpoolSchemaError",
    "SpoolStorageError",
    "storage_reason",
]


class SpoolError(YaiSpoolError):
    """Base of every spool error."""


class SpoolStorageError(SpoolError):
    """SQLite or the filesystem failed.

    Attributes:
        reason: one of ``disk_full``, ``readonly``, ``permission``, ``busy``, ``corrupt``,
            ``disk_error``, ``schema``.
        sqlite_errorname: SQLite's extended error name (``SQLITE_FULL``...), when SQLite raised.
    """

    def __init__(self, message: str, *, reason: str, sqlite_errorname: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.sqlite_errorname = sqlite_errorname


class SpoolPermissionError(SpoolStorageError):
    """The spool file or directory cannot be opened, or its mode is unsafe to use."""

    def __init__(self, message: str, *, sqlite_errorname: str | None = None):
        super().__init__(message, reason="permission", sqlite_errorname=sqlite_errorname)


class SpoolCorruptError(SpoolStorageError):
    """The spool is corrupt and quarantining it failed (or the fresh file is corrupt too)."""

    def __init__(self, message: str, *, sqlite_errorname: str | None = None):
        super().__init__(message, reason="corrupt", sqlite_errorname=sqlite_errorname)


class SpoolSchemaError(SpoolStorageError):
    """Not a yai-spool file, or written by a newer schema version: refused, never modified."""

    def __init__(self, message: str):
        super().__init__(message, reason="schema")


class SpoolReadOnlyError(SpoolStorageError):
    """A write method was called on a spool opened with ``Spool.open_readonly``."""

    def __init__(self, message: str):
        super().__init__(message, reason="readonly")


class SpoolDropped(SpoolError):
    """``append`` did not store the record; it was counted under ``reason``."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


class SpoolFull(SpoolDropped):
    """The spool is at ``max_records``/``max_bytes`` (``drop_newest`` or ``full_timeout``)."""


class SpoolRecordTooLarge(SpoolDropped):
    """One encoded record is larger than ``max_record_bytes`` (or the whole spool)."""

    def __init__(self, message: str):
        super().__init__(message, reason="too_large")


class SpoolEncodeError(SpoolDropped, ValueError):
    """The entry is not JSON-serialisable (or holds NaN/Infinity)."""

    def __init__(self, message: str):
        super().__init__(message, reason="encode_error")


class SpoolAppendStorageError(SpoolDropped, SpoolStorageError):
    """Append failed in SQLite/OS (disk full, read-only, permission, busy, I/O error)."""

    def __init__(self, message: str, *, reason: str, sqlite_errorname: str | None = None):
        SpoolStorageError.__init__(self, message, reason=reason, sqlite_errorname=sqlite_errorname)


class SpoolClosedError(SpoolError):
    """The spool was closed; open a new ``Spool``."""


def storage_reason(exc: BaseException) -> str:
    """Map an ``sqlite3.Error``/``OSError`` to a drop reason (by error name, never message)."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", None) or ""
        if name.startswith("SQLITE_FULL"):
            return "disk_full"
        if name.startswith("SQLITE_READONLY"):
            return "readonly"
        if name.startswith(("SQLITE_PERM", "SQLITE_AUTH", "SQLITE_CANTOPEN")):
            return "permission"
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return "busy"
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return "corrupt"
        return "disk_error"
    if isinstance(exc, PermissionError):
        return "permission"
    if isinstance(exc, OSError):
        if exc.errno == errno.ENOSPC:
            return "disk_full"
        if exc.errno == errno.EROFS:
            return "readonly"
    return "disk_error"
