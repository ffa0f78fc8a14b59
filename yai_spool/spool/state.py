"""``SpoolState``: what one ``Spool`` instance holds in one process, and the fork guard.

Owns the per-process state every other part of ``Spool`` reads (the write connection's
lock, the side connection's lock, the size estimate, drops pending in memory, the group
commit queue, the lease book, the housekeeper, the drop_newest fast-path hint) and its reset
in a forked child (``_reset_process_state``), plus the at-fork hooks that hold the locks of
every live ``Spool`` across ``fork()``. The methods that use the state live in the modules of
``Spool``'s bases (``opening``, ``upkeep``, ``flushing``, ``appending``, ``settling``,
``leasing``, ``reading``); ``core.Spool`` combines them.

Invariants: every SQLite call of a ``Spool`` runs under ``_lock`` (main connection) or
``_ckpt_lock`` (side connection), and no code path waits for ``_lock`` while holding
``_ckpt_lock`` (the fork guard below depends on it). ``_fast_ok`` is True only while the
append fast path may skip every check but the bounds (see ``_update_fast``).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from yai_spool.spool.files import FlusherLock
from yai_spool.spool.housekeeper import Housekeeper
from yai_spool.spool.ledger import Ledger
from yai_spool.spool.store import SpoolQueue
from yai_spool.spool.types import SpoolConfig, SpoolEvent

__all__ = ["SpoolState"]

# Nearly full disk ("tight": less free than _TIGHT_FREE, or than 4 WALs): producers refresh
# every _TIGHT_REFRESH appends, wake the housekeeper without its minimum gap, and restart the
# WAL past _TIGHT_RESTART_BYTES. A 3 MiB disk filled after ~550 records otherwise: their WAL
# frames (one page per commit) took it all, leaving no room for the checkpoint itself.
_TIGHT_FREE: Final = 16 * 1024 * 1024
_TIGHT_REFRESH: Final = 32
_TIGHT_RESTART_BYTES: Final = 128 * 1024


# --- fork safety ------------------------------------------------------------------------------
# fork() while another thread is inside SQLite deadlocks the child: SQLite's allocator holds a
# process-global mutex (SQLITE_MUTEX_STATIC_MEM) that the child inherits locked, so its first
# SQLite call (reopening its connection) waits forever. Every SQLite call of a Spool runs under
# its ``_lock`` (main connection) or ``_ckpt_lock`` (side connection), and no code path waits
# for ``_lock`` while holding ``_ckpt_lock``; so holding both of every live Spool across fork()
# (in that order) means no thread of ours is inside SQLite at that instant. Bounded: a lock that
# stays busy (a long busy_timeout wait) is skipped after _FORK_LOCK_WAIT rather than blocking
# fork() forever. Both the parent and the child release what was taken; the child then replaces
# every lock anyway (reopen_after_fork, at its first use of the spool).
_FORK_LOCK_WAIT: Final = 10.0
_live_spools: weakref.WeakSet[SpoolState] = weakref.WeakSet()
_fork_held: list[Any] = []


def _before_fork() -> None:
    pid = os.getpid()
    for spool in list(_live_spools):
        if spool._pid != pid:  # inherited and not reopened here: its locks are not in use
            continue
        for lock in (spool._lock, spool._ckpt_lock):
            try:
                if lock.acquire(timeout=_FORK_LOCK_WAIT):
                    _fork_held.append(lock)
            except Exception:  # noqa: S112 - never break fork() over a spool
                continue


def _after_fork() -> None:
    while _fork_held:
        _fork_held.pop().release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork
    )


class SpoolState:
    """The state of one ``Spool`` (see the module docstring); holds no SQLite call itself."""

    def __init__(
        self, path: Path, config: SpoolConfig, *, clock: Callable[[], float], readonly: bool
    ) -> None:
        self.path = path
        self.config = config
        self.readonly = readonly
        self._clock = clock
        self._max_records = config.max_records
        self._max_bytes = config.max_bytes
        self._max_record_bytes = min(config.max_record_bytes, config.max_bytes)
        self._refresh_every = config.refresh_every
        self._closed = False
        self._flusher_lock: FlusherLock | None = None
        self.open_events: tuple[SpoolEvent, ...] = ()
        self._reset_process_state()
        _live_spools.add(self)

    def _reset_process_state(self) -> None:
        self._lock = threading.Lock()
        self._ckpt_lock = threading.Lock()
        self._pid = os.getpid()
        self._owner_id = secrets.token_hex(8)
        self._store: SpoolQueue | None = None
        # The side connection: WAL checkpoints and reading leased rows, never the write lock.
        self._ckpt_conn: sqlite3.Connection | None = None
        self._ckpt_ino = -1
        # Leases this instance made: token -> (ids, sizes) as read at lease time (see ack).
        self._book: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self._book_lock = threading.Lock()
        self._ino = -1
        self._est_rows = 0
        self._est_bytes = 0
        self._since_refresh = 0
        self._pending: Counter[str] = Counter()
        self._needs_check = False
        self._fast_ok = False
        self._space = threading.Event()
        self._waiting = 0
        # Group commit (append_log): parked rows and whether a thread is committing them.
        self._group: list[list[Any]] = []
        self._group_mutex = threading.Lock()
        self._leading = False
        # Background upkeep (housekeeper.py): started on the first append / flusher lock.
        self._housekeeper: Housekeeper | None = None
        self._ledger = Ledger(self.path, self._owner_id)
        self._pending_at: float | None = None  # wall time of the newest drop in _pending
        self._published: tuple[Any, ...] | None = None  # what our ledger slot says
        self._published_at = 0.0
        self._wal_seen: tuple[int, int] | None = None  # WAL (size, mtime) at the last checkpoint
        self._wal_idle = False  # one quiet tick passed since the last complete checkpoint
        self._tight = False  # the disk is nearly full (see _TIGHT_FREE)
        self._mark_tail: tuple[int, int, int, int] | None = None  # (gen, acct_id, upto, rows)
        self._created_at: float | None = None
        # The drop_newest fast path: (monotonic deadline, rows left, bytes left) of the last
        # exact "full" decision (see _FULL_RECHECK).
        self._full_until = 0.0
        self._room = (0, 0)
        self._full_message: str | None = None

    def _update_fast(self) -> None:
        self._fast_ok = (
            self._store is not None
            and not self.readonly
            and not self._closed
            and not self._pending
            and not self._needs_check
        )

    @property
    def owner_id(self) -> str:
        """This instance's lease-owner identity (changes after fork)."""
        return self._owner_id
