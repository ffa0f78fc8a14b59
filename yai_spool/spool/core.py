"""``Spool``: the policy layer over ``store.SpoolQueue`` (the contract: package docstring).

Owns the ``Spool`` class itself: construction, ``open_readonly``, ``close`` and the context
manager. Its behaviour lives in its bases, one module per idea, in MRO order:

- ``appending.SpoolAppending``: append paths, bounds and ``when_full``, drop counting;
- ``leasing.SpoolLeasing`` / ``settling.SpoolSettling``: lease, ack / release / dead_letter,
  replay and purge;
- ``reading.SpoolReading``: stats, listings, checks;
- ``flushing.SpoolFlushing``: the flusher lock and lease recovery;
- ``upkeep.SpoolUpkeep``: the housekeeper's tick and WAL checkpoints;
- ``opening.SpoolOpening``: opening, quarantine, connections, the size refresh;
- ``state.SpoolState``: the per-process state and the fork guard.

Plain inheritance, no delegation: a method call costs what it cost when all of them were in
this module (CPython caches the lookup per type), so the append path has no extra layer.

The names this module held before the split (the helpers and constants now in the modules
above, and the types it imported) are still found as ``core.<name>``: a module
``__getattr__`` looks them up where they live now.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from yai_spool.spool import (
    appending,
    common,
    connection,
    exceptions,
    files,
    housekeeper,
    leasing,
    ledger,
    opening,
    reading,
    schema,
    settling,
    state,
    store,
    types,
    upkeep,
    walcheck,
)
from yai_spool.spool.appending import SpoolAppending
from yai_spool.spool.leasing import SpoolLeasing
from yai_spool.spool.reading import SpoolReading
from yai_spool.spool.state import _live_spools
from yai_spool.spool.types import SpoolConfig

__all__ = ["Spool"]


class Spool(SpoolAppending, SpoolLeasing, SpoolReading):
    """A durable, bounded, multi-process queue of JSON log entries in one SQLite file.

    Thread-safe; one ``Spool`` per process and path is the intended use (each instance is one
    connection and one lease owner). See the package docstring for states and guarantees.

    Args:
        path: the database file; its directory is created 0700 if missing.
        config: bounds and tunables (``SpoolConfig()`` by default).
        clock: wall clock (unix seconds) for enqueued_at, leases and counters; tests inject one.

    Raises:
        SpoolPermissionError: unsafe/unwritable directory or file.
        SpoolSchemaError: not a spool, or a newer schema.
        SpoolCorruptError: corrupt and the quarantine (or the fresh file) failed.
        SpoolStorageError: any other SQLite/OS failure at open.
    """

    # SpoolHandler's own at-fork workaround checks this and stands down (see _before_fork).

    GUARDS_FORK: Final = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: SpoolConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        _readonly: bool = False,
    ) -> None:
        super().__init__(
            Path(os.path.abspath(os.fspath(path))),
            config if config is not None else SpoolConfig(),
            clock=clock,
            readonly=_readonly,
        )
        with self._lock:
            # The first open in this process looks for committed records SQLite dropped: a
            # damaged WAL (walcheck) and fewer records than the ledger's mark says were accepted.
            self._open(check=self.config.integrity_check == "quick" and not _readonly, audit=True)

    @classmethod
    def open_readonly(
        cls, path: str | os.PathLike[str], *, clock: Callable[[], float] = time.time
    ) -> Spool:
        """Open for reading only (``file:...?mode=ro``): never creates or writes the database.

        Safe on a live spool while producers append and a flusher leases. Write methods raise
        ``SpoolReadOnlyError``; a missing file raises ``SpoolStorageError`` (reason permission).
        """
        return cls(path, clock=clock, _readonly=True)

    def __repr__(self) -> str:
        mode = "ro" if self.readonly else "rw"
        return f"<Spool {str(self.path)!r} {mode}{' closed' if self._closed else ''}>"

    def close(self) -> None:
        """Close this process's connections and give up the flusher lock (idempotent).

        Committed records stay in the file; leases stay until they expire or a flusher recovers
        them.
        """
        if self._pid != os.getpid():
            self._closed = True
            self.reopen_after_fork()
            return
        # First, and without our locks (a tick may be waiting for them): after close() no
        # housekeeper runs.
        self._stop_housekeeper()
        with self._lock:
            if self._closed:
                return
            if self._pending and self._store is not None and not self.readonly:
                with contextlib.suppress(sqlite3.Error), self._write():
                    pass
            if not self.readonly:
                if self._pending:  # the disk is still unwritable: leave them in the ledger
                    self._ledger.claim(self._clock())
                    self._publish(dict(self._pending), self._pending_at, self._clock())
                    self._ledger.close()
                else:
                    self._ledger.release()
            self._closed = True
            store, self._store = self._store, None
            self._update_fast()
            if store is not None:
                store.close()
        with self._ckpt_lock:
            conn, self._ckpt_conn = self._ckpt_conn, None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        self.release_flusher()
        _live_spools.discard(self)
        self._space.set()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Before the split this module held (or imported) the helpers, constants and types its
# ``Spool`` used; ``core.<name>`` and ``from yai_spool.spool.core import <name>`` still find
# them where they live now. Patching one here changes nothing: patch the module that uses it.
_FORMER_HOMES: Final = (
    appending, leasing, reading, settling, opening, upkeep, state, connection, exceptions,
    files, housekeeper, ledger, schema, store, types, walcheck,
)  # fmt: skip
_RENAMED: Final = {
    "_CHECKPOINT_MODES": (common, "CHECKPOINT_MODES"),
    "_ids_of": (common, "settle_ids"),
    "read_ledger": (ledger, "read"),
    "scan_wal": (walcheck, "scan"),
}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        module, attr = _RENAMED[name]
        return getattr(module, attr)
    for module in _FORMER_HOMES:
        if name in vars(module):
            return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
