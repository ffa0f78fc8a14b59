"""Connections to a spool file: opening, PRAGMAs, waiting for another process's lock.

Owns: how a connection to a spool is opened (read-only URI mode, no implicit transactions),
the writer PRAGMAs (WAL, synchronous, no autocheckpoint), ``busy_retry`` (short polls instead
of SQLite's own busy handler), and the rule that some connections are never closed by this
process (``keep_forever``: inherited across fork(), or to a file judged corrupt or replaced).
``store.SpoolQueue`` and the side connection of ``Spool`` both open their connections here.
"""

from __future__ import annotations

import contextlib
import ctypes
import sqlite3
import time
import urllib.parse
from collections.abc import Callable
from typing import Final, TypeVar

__all__ = [
    "CorruptFileError",
    "busy_retry",
    "configure",
    "connect",
    "is_corrupt",
    "keep_forever",
    "open_connection",
]

_T = TypeVar("_T")


# Objects holding SQLite connections that must never be closed by this process: connections
# inherited across fork(), connections to a file found corrupt, connections to a file another
# process quarantined. Closing one could checkpoint with stale state into a damaged file, or
# delete a -wal by name (the corrupt file's evidence, or the *new* file's WAL). An extra
# reference (Py_IncRef) keeps them alive even through interpreter shutdown.
_NEVER_CLOSE: list[object] = []


def keep_forever(obj: object) -> None:
    """Never close ``obj``'s connections in this process (see ``_NEVER_CLOSE``)."""
    if obj is None:
        return
    _NEVER_CLOSE.append(obj)
    with contextlib.suppress(Exception):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


class CorruptFileError(Exception):
    """Internal: ``quick_check`` (or reading the header) found the file damaged."""


def open_connection(file: str, *, readonly: bool, busy_timeout: float) -> sqlite3.Connection:
    """Open without writing anything: the caller inspects the file before ``configure``.

    ``isolation_level=None``: no implicit transactions; every write is either one autocommit
    statement (append) or an explicit ``BEGIN IMMEDIATE`` (so the write lock is taken up front
    and SQLite's busy handler applies, instead of failing on a read-to-write upgrade).
    """
    if readonly:
        # mode=ro: never creates or writes the database file. (SQLite may still create empty
        # -wal/-shm companions, with the database file's mode, when no writer has them open.)
        uri = f"file:{urllib.parse.quote(file)}?mode=ro"
        conn = sqlite3.connect(
            uri, uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA query_only = ON")
        return conn
    return sqlite3.connect(
        file, timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )


def configure(conn: sqlite3.Connection, *, synchronous: str, wal_max_bytes: int) -> None:
    """The writer PRAGMAs (WAL; per-connection settings)."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"could not switch to WAL (journal_mode={mode})")
    # Values come from an allow-list (Synchronous enum), never from free text.
    if synchronous not in ("NORMAL", "FULL"):
        raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    # Checkpoints never run on a producer's commit; the flusher (or, as a fallback, a
    # producer whose WAL passed wal_max_bytes) runs them explicitly.
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute(f"PRAGMA journal_size_limit = {int(wal_max_bytes)}")
    conn.execute("PRAGMA temp_store = MEMORY")


def connect(
    file: str, *, synchronous: str, busy_timeout: float, wal_max_bytes: int
) -> sqlite3.Connection:
    """A configured writer connection to a file already known to be a sound spool."""
    conn = open_connection(file, readonly=False, busy_timeout=busy_timeout)
    try:
        configure(conn, synchronous=synchronous, wal_max_bytes=wal_max_bytes)
    except BaseException:
        conn.close()
        raise
    return conn


# Waiting for another process's write lock. SQLite's own busy handler sleeps 1, 2, 5, 10,
# 15, 20, 25 ms ... between tries (its compiled-in table), so an append that meets a
# flusher's transaction in another process waited 78 ms after 7 unlucky tries (measured:
# emit p99.9 79 ms beside a draining daemon). The writer connection sets busy_timeout 0 and
# retries here instead, polling from 20 µs up to 0.5 ms, until busy_timeout has passed.
_BUSY_FIRST: Final = 0.00002
_BUSY_MAX: Final = 0.0005


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def busy_retry(run: Callable[[], _T], first: sqlite3.OperationalError, timeout: float) -> _T:
    """Run ``run`` again until it stops failing with SQLITE_BUSY or ``timeout`` passes.

    ``first`` is the busy error that brought the caller here (re-raised on timeout; any
    other error is raised at once).
    """
    if not _is_busy(first):
        raise first
    deadline = time.monotonic() + timeout
    delay = _BUSY_FIRST
    while True:
        if time.monotonic() >= deadline:
            raise first
        time.sleep(delay)  # another process holds the write lock: nothing to wait on
        delay = min(delay * 2, _BUSY_MAX)
        try:
            return run()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            first = exc


def is_corrupt(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", None) or ""
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
