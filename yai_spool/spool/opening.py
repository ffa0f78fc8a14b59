"""``SpoolOpening``: opening the spool file, integrity checks, quarantine, and the connections.

Owns: opening (and reopening after a fork, a detected corruption or a file another process
replaced) this process's write connection and the side connection, the open-time audits
(a damaged WAL via ``walcheck``, records missing below the ledger's mark), quarantine of a
corrupt file (package docstring, invariant 9), the exact size refresh behind the append
estimate, the write transaction that also persists drops counted in memory (``_write``), and
mapping SQLite/OS failures to typed errors.

Invariants: a connection to a file judged corrupt, inherited across fork() or replaced by
another process is never closed (``store.keep_forever``); a file is quarantined only while it
is still the inode that was judged (under the exclusive open lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from yai_spool.spool.connection import CorruptFileError, connect, keep_forever
from yai_spool.spool.exceptions import (
    SpoolClosedError,
    SpoolCorruptError,
    SpoolError,
    SpoolPermissionError,
    SpoolReadOnlyError,
    SpoolStorageError,
    storage_reason,
)
from yai_spool.spool.files import open_lock, prepare_files, quarantine
from yai_spool.spool.ledger import Ledger
from yai_spool.spool.ledger import read as read_ledger
from yai_spool.spool.state import _TIGHT_RESTART_BYTES, SpoolState
from yai_spool.spool.store import Acct, SpoolQueue
from yai_spool.spool.types import (
    SpoolEvent,
)
from yai_spool.spool.walcheck import WalScan, judge, same_generation
from yai_spool.spool.walcheck import scan as scan_wal

__all__ = ["SpoolOpening"]

# A producer folds the accounting tail itself once it is this long (no flusher running), so
# nobody's size query ever scans more than this many rows.
_RECONCILE_TAIL: Final = 16_384


class SpoolOpening(SpoolState):
    """Opening, reopening and the connections of a ``Spool`` (see the module docstring)."""

    def _connect_store(
        self,
        *,
        readonly: bool,
        check: bool = False,
        wal_probe: Callable[[int | None], None] | None = None,
    ) -> SpoolQueue:
        return SpoolQueue(
            str(self.path),
            readonly=readonly,
            synchronous=str(self.config.synchronous),
            busy_timeout=float(self.config.busy_timeout),
            wal_max_bytes=self.config.wal_max_bytes,
            now=self._clock(),
            check=check,
            wal_probe=wal_probe,
        )

    def _try_open(
        self, check: bool, events: list[tuple[str, dict[str, Any]]] | None = None
    ) -> tuple[SpoolQueue | None, int, str | None]:
        """(store, inode, None), or (None, inode, why) when the file is corrupt.

        Called under the open lock, so the inode is the one the connection opened. With
        ``events``, the WAL is audited (walcheck) and a ``wal_damaged`` event added to them.
        """
        ino = os.stat(self.path).st_ino
        wal = Path(f"{self.path}-wal")
        before = scan_wal(wal) if events is not None else None
        probe = None
        if before is not None and events is not None:
            found, into = before, events

            def probe(accepted: int | None) -> None:
                self._audit_wal(wal, found, accepted, into)

        try:
            return self._connect_store(readonly=False, check=check, wal_probe=probe), ino, None
        except CorruptFileError as exc:
            return None, ino, f"quick_check: {exc}"
        except sqlite3.DatabaseError as exc:
            if storage_reason(exc) == "corrupt":
                return None, ino, f"{exc.sqlite_errorname}: {exc}"
            raise

    def _audit_wal(
        self,
        wal: Path,
        before: WalScan,
        accepted: int | None,
        events: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Compare the WAL as found with what SQLite accepted; keep the evidence if it lost any.

        Runs inside the store's open, before anything writes to the WAL, so the damaged file
        is still as found. Never raises (a failed audit must not fail the open).
        """
        damage = judge(before, accepted) if accepted is not None else None
        if damage is None or not same_generation(wal, before):
            return  # intact, or another process restarted the WAL meanwhile: inconclusive
        saved: str | None = None
        target = Path(f"{self.path}.wal-damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                with open(wal, "rb") as src:
                    while chunk := src.read(1 << 20):
                        os.write(fd, chunk)
            finally:
                os.close(fd)
            saved = str(target)
        except OSError:  # a full disk: the event says so, the verdict still tells
            with contextlib.suppress(OSError):
                target.unlink()
        events.append(("wal_damaged", {**damage.detail(), "saved_to": saved}))

    def _audit_mark(self, store: SpoolQueue, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Fewer records than the ledger's high-water mark: committed records were lost."""
        mark = read_ledger(self.path).mark
        if mark is None:
            return
        with store.read_txn() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
            acct = store.accounting(conn)
        created = float(json.loads(row[0])) if row else None
        self._created_at = created
        appended = acct.in_rows + acct.tail_rows
        if created is None or mark.created_at != created or appended >= mark.appended:
            return
        missing = {
            "records_missing": mark.appended - appended,
            "appended_mark": mark.appended,
            "appended_now": appended,
            "mark_at": mark.at,
        }
        for kind, detail in events:
            if kind == "wal_damaged":
                detail.update(missing)
                break
        else:
            events.append(("records_missing", missing))
        # Reported once (the event is kept): from now on the mark counts from here.
        self._ledger.raise_mark(created, appended, self._clock(), reset=True)

    def _open(self, *, check: bool, audit: bool = False) -> None:
        """Open (or reopen) this process's connection. Caller holds ``self._lock``."""
        events: list[tuple[str, dict[str, Any]]] = []
        try:
            if self.readonly:
                store = self._connect_store(readonly=True)
                ino = os.stat(self.path).st_ino
            else:
                events += prepare_files(self.path)
                with contextlib.suppress(OSError):
                    # Now, while there is space: the ledger must exist before the disk fills.
                    Ledger.create(self.path)
                with open_lock(self.path, exclusive=False):
                    opened, ino, problem = self._try_open(check, events if audit else None)
                if opened is None:
                    store, ino = self._quarantine_and_open(ino, str(problem), check, events)
                else:
                    store = opened
                    if audit:
                        with contextlib.suppress(sqlite3.Error):
                            self._audit_mark(store, events)
        except SpoolError:
            raise
        except sqlite3.Error as exc:
            raise self._open_error(exc) from exc
        except OSError as exc:
            raise SpoolPermissionError(f"cannot open spool {self.path}: {exc}") from exc
        self._store = store
        store.tran_lock = self._lock  # persist-queue's stock helpers then serialise with us
        self._ino = ino
        now = self._clock()
        self.open_events = tuple(
            SpoolEvent(now, kind, MappingProxyType(detail)) for kind, detail in events
        )
        if not self.readonly:
            if events:
                self._record_open_events(events, now)
            self._refresh()
            # The first append takes the slow path, which starts the housekeeper.
            self._since_refresh = self._refresh_every
        self._update_fast()

    def _quarantine_and_open(
        self, ino: int, why: str, check: bool, events: list[tuple[str, dict[str, Any]]]
    ) -> tuple[SpoolQueue, int]:
        with open_lock(self.path, exclusive=True):
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                current = -1
            if current == ino:  # still the file we judged (no other process got here first)
                moved = quarantine(self.path, self._clock())
                events.append(
                    ("quarantined", {"path": str(self.path), "moved_to": str(moved), "reason": why})
                )
            events += prepare_files(self.path)
            store, new_ino, again = self._try_open(check)
        if store is None:
            raise SpoolCorruptError(
                f"fresh spool {self.path} is unusable after quarantine: {again}"
            )
        return store, new_ino

    def _open_error(self, exc: sqlite3.Error) -> SpoolStorageError:
        reason = storage_reason(exc)
        name = getattr(exc, "sqlite_errorname", None)
        if reason == "permission":
            return SpoolPermissionError(
                f"cannot open spool {self.path}: {exc}", sqlite_errorname=name
            )
        if reason == "corrupt":
            return SpoolCorruptError(f"spool {self.path} is corrupt: {exc}", sqlite_errorname=name)
        return SpoolStorageError(
            f"cannot open spool {self.path}: {exc}", reason=reason, sqlite_errorname=name
        )

    def _record_open_events(self, events: list[tuple[str, dict[str, Any]]], now: float) -> None:
        store = self._store
        assert store is not None
        with contextlib.suppress(sqlite3.Error), store.write_txn() as conn:
            for kind, detail in events:
                if kind == "loose_directory_mode":
                    # Reported on every open; persisted once per distinct finding.
                    same = conn.execute(
                        "SELECT 1 FROM events WHERE kind = ? AND detail = ?",
                        (kind, json.dumps(detail, sort_keys=True)),
                    ).fetchone()
                    if same:
                        continue
                store.add_event(conn, now, kind, detail)

    def _ensure_store(self, *, write: bool) -> SpoolQueue:
        """Caller holds the lock. Reopens after a detected corruption."""
        if self._closed:
            raise SpoolClosedError(f"spool {self.path} is closed")
        if write and self.readonly:
            raise SpoolReadOnlyError(f"spool {self.path} was opened read-only")
        if self._needs_check or self._store is None:
            keep_forever(self._store)
            self._store = None
            self._needs_check = False
            self._open(check=not self.readonly)
        assert self._store is not None
        return self._store

    @contextlib.contextmanager
    def _locked(self, *, write: bool = True) -> Iterator[SpoolQueue]:
        if self._pid != os.getpid():
            self.reopen_after_fork()
        with self._lock:
            yield self._ensure_store(write=write)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that also persists drops counted in memory. Lock held."""
        store = self._store
        assert store is not None
        pending = Counter(self._pending)
        with store.write_txn() as conn:
            if pending:
                at = self._pending_at if self._pending_at is not None else self._clock()
                store.add_drops(conn, {f"drop.{k}": v for k, v in pending.items()}, at)
            yield conn
        if pending:
            self._pending -= pending
            if not self._pending:
                self._pending_at = None
            self._update_fast()

    def _storage_error(self, op: str, exc: BaseException) -> SpoolStorageError:
        reason = storage_reason(exc)
        if reason == "corrupt":
            self._needs_check = True
            self._update_fast()
        name = getattr(exc, "sqlite_errorname", None)
        return SpoolStorageError(
            f"spool {op} failed on {self.path} ({reason}): {exc}",
            reason=reason,
            sqlite_errorname=name,
        )

    def _refresh(self) -> Acct:
        """Exact sizes into the estimate; fold a long tail; notice a replaced file; bound the WAL.

        Caller holds the lock, store open, not read-only. Wakes a running housekeeper (an
        append under way also starts one, see ``SpoolAppending._append_slow``).
        """
        try:
            st_ino = os.stat(self.path).st_ino
        except FileNotFoundError:
            st_ino = -2
        if st_ino != self._ino:
            # Another process quarantined/replaced the file under us: follow the path.
            keep_forever(self._store)
            self._store = None
            self._open(check=False)
        store = self._store
        assert store is not None
        with store.read_txn() as conn:
            acct = store.accounting(conn)
        if acct.tail_rows > _RECONCILE_TAIL:
            with self._write() as conn:
                acct = store.reconcile(conn)
        self._est_rows, self._est_bytes = acct.total_rows, acct.total_bytes
        self._since_refresh = 0
        keeper = self._housekeeper
        if keeper is not None:
            keeper.wake(urgent=self._tight)  # refresh_every appends since the last one
        try:
            wal = os.stat(f"{self.path}-wal").st_size
        except FileNotFoundError:
            wal = 0
        if wal > (_TIGHT_RESTART_BYTES if self._tight else self.config.wal_max_bytes):
            # Writers that never pause keep the housekeeper's checkpoints from catching up, so
            # the WAL never restarts and grows for as long as they write. Catch up here, with
            # this process's writers held by our lock: the housekeeper copied all but the last
            # moment's frames already, so this is short; the next append restarts the WAL and
            # journal_size_limit cuts the file back to wal_max_bytes. (Measured: a growing WAL
            # costs every append more than these rare catch-ups cost the one that runs them.)
            with contextlib.suppress(sqlite3.Error):
                store.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        return acct

    def _side_conn(self) -> sqlite3.Connection:
        """The second connection (checkpoints, reading leased rows). Caller holds _ckpt_lock."""
        conn = self._ckpt_conn
        if conn is not None and self._ckpt_ino != self._ino:
            # The main connection followed a replaced (quarantined) file: follow it too. Never
            # close a connection to a file judged corrupt (see store.keep_forever).
            keep_forever(conn)
            conn = None
        if conn is None:
            ino = self._ino
            conn = connect(
                str(self.path), synchronous=str(self.config.synchronous),
                busy_timeout=float(self.config.busy_timeout),
                wal_max_bytes=self.config.wal_max_bytes,
            )  # fmt: skip
            self._ckpt_conn, self._ckpt_ino = conn, ino
        return conn

    def reopen_after_fork(self) -> None:
        """In a forked child: forget the parent's connections, locks and lease identity.

        Call from ``os.register_at_fork(after_in_child=...)``; every method also does it
        lazily when it sees a new pid. The parent's connections are never closed here (that is
        what SQLite forbids); the child opens its own on first use.
        """
        if self._pid == os.getpid():
            return
        keep_forever(self._store)
        keep_forever(self._ckpt_conn)
        if self._flusher_lock is not None:
            self._flusher_lock.forget_after_fork()
            self._flusher_lock = None
        self._reset_process_state()  # fresh locks: a parent thread may have held them at fork
        if self._closed:
            return
        with self._lock:
            self._open(check=False)  # the parent checked this file
