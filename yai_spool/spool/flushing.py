"""``SpoolFlushing``: the flusher lock of a ``Spool`` and the recovery of leases it implies.

Owns: becoming / staying / stopping being the spool's only flusher (``files.FlusherLock``), and
``recover_leases``: the lock holder is the only legitimate lease owner, so taking the lock
reverts every lease of other instances (package docstring, invariant 3).
"""

from __future__ import annotations

import os
import sqlite3

from yai_spool.spool.exceptions import (
    SpoolReadOnlyError,
)
from yai_spool.spool.files import FlusherLock
from yai_spool.spool.upkeep import SpoolUpkeep

__all__ = ["SpoolFlushing"]


class SpoolFlushing(SpoolUpkeep):
    """The flusher lock of a ``Spool`` (see the module docstring)."""

    def acquire_flusher(self) -> bool:
        """Try to become this spool's only flusher (non-blocking).

        On success every lease not owned by this instance reverts to READY (attempts + 1): the
        lock holder is the only legitimate lease owner, so such leases belong to a dead flusher.
        """
        if self._pid != os.getpid():
            self.reopen_after_fork()
        if self.readonly:
            raise SpoolReadOnlyError(f"spool {self.path} was opened read-only")
        if self._flusher_lock is None:
            self._flusher_lock = FlusherLock(self.path)
        if not self._flusher_lock.acquire():
            return False
        try:
            self.recover_leases()
        except BaseException:
            self._flusher_lock.release()
            raise
        with self._lock:  # a flusher that never appends (the daemon) still checkpoints
            keeper = self._housekeeper
            if keeper is None or not keeper.alive:
                self._start_housekeeper()
        return True

    def release_flusher(self) -> None:
        """Stop being the flusher (idempotent). Outstanding leases stay until expiry/recovery."""
        if self._flusher_lock is not None:
            self._flusher_lock.release()

    @property
    def is_flusher(self) -> bool:
        """True while this instance holds the flusher lock."""
        return self._flusher_lock is not None and self._flusher_lock.held

    def flusher_pid(self) -> int | None:
        """Pid of the process holding the flusher lock, None if nobody does."""
        return FlusherLock(self.path).holder_pid() if not self.is_flusher else os.getpid()

    def recover_leases(self) -> int:
        """Revert every lease not owned by this instance to READY; returns records reverted."""
        with self._locked() as store:
            try:
                with self._write() as conn:
                    n = store.revert_foreign(conn, self._owner_id)
                    if n:
                        store.add_counters(conn, {"leases_recovered": n})
            except sqlite3.Error as exc:
                raise self._storage_error("recover_leases", exc) from exc
        return n
