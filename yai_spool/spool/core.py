# ruff: noqa: S608 - SQL text only interpolates module constants (table name, status codes);
# every value is a bound parameter.
"""``Spool``: the policy layer over ``store.SpoolQueue`` (the contract: package docstring).

Owns: the per-process connection and its lock, bounds and ``when_full``, drop counting (persisted
or pending in memory), fork handling, opening with integrity check and quarantine, and mapping
SQLite/OS failures to typed errors.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import secrets
import sqlite3
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from yai_spool.spool.exceptions import (
    SpoolAppendStorageError,
    SpoolClosedError,
    SpoolCorruptError,
    SpoolEncodeError,
    SpoolError,
    SpoolFull,
    SpoolPermissionError,
    SpoolReadOnlyError,
    SpoolRecordTooLarge,
    SpoolStorageError,
    storage_reason,
)
from yai_spool.spool.files import FlusherLock, open_lock, prepare_files, quarantine
from yai_spool.spool.housekeeper import Housekeeper
from yai_spool.spool.ledger import Ledger
from yai_spool.spool.ledger import read as read_ledger
from yai_spool.spool.schema import (
    CODEC_JSON,
    CODEC_LOG,
    LEASED,
    QUEUE_TABLE,
    decode_stored,
    encode_stored,
    read_schema_version,
)
from yai_spool.spool.store import (
    GROUP_ROWS,
    LAST_DROP,
    Acct,
    CorruptFileError,
    Row,
    SpoolQueue,
    busy_retry,
    connect,
    keep_forever,
)
from yai_spool.spool.types import (
    Batch,
    CheckpointResult,
    DeadLetter,
    DropReason,
    LastError,
    QueuedRecord,
    RecordState,
    SpoolConfig,
    SpoolEvent,
    SpoolStats,
    WhenFull,
)
from yai_spool.spool.walcheck import WalScan, judge, same_generation
from yai_spool.spool.walcheck import scan as scan_wal

__all__ = ["Spool"]

# A producer folds the accounting tail itself once it is this long (no flusher running), so
# nobody's size query ever scans more than this many rows.
_RECONCILE_TAIL: Final = 16_384
# The lease scan looks at most max(_MIN_WINDOW, 16 * max_records) ids past the oldest READY row.
_MIN_WINDOW: Final = 65_536
_CHECKPOINT_MODES: Final = frozenset({"PASSIVE", "FULL", "RESTART", "TRUNCATE"})
# Leases remembered per instance for range-settling (a flusher holds one or two at a time).
_BOOK_SIZE: Final = 8
# Group commit: "you lead the next group" (see Spool._group_commit); a lock per waiter.
_LEAD: Final = object()
_allocate_lock: Final = threading.Lock
# A spool found full (when_full="drop_newest") is taken at its word for this long before its
# exact size is read again (at once after an ack or purge of this instance): refusing a record
# must not cost a size query and a transaction each time (issue: 63 us vs 24 us per record).
# Another process's acks are therefore noticed up to this late; drops stay exact and counted.
_FULL_RECHECK: Final = 0.05
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
_live_spools: weakref.WeakSet[Spool] = weakref.WeakSet()
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


# This process's pid, for the append path (os.getpid() is a system call per record); the
# at-fork hook keeps it right in a child.
_PID = os.getpid()


def _after_fork_in_child() -> None:
    global _PID  # noqa: PLW0603 - one process-wide fact, changed only by fork()
    _PID = os.getpid()
    _after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork_in_child
    )


def _ids_of(target: Batch | Iterable[int]) -> tuple[list[int], str | None]:
    """(distinct ids in id order, lease token or None): settling order is always id order."""
    if isinstance(target, Batch):
        return sorted(set(target.ids)), target.token
    return sorted({int(i) for i in target}), None


class Spool:
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
        self.path = Path(os.path.abspath(os.fspath(path)))
        self.config = config if config is not None else SpoolConfig()
        self.readonly = _readonly
        self._clock = clock
        self._max_records = self.config.max_records
        self._max_bytes = self.config.max_bytes
        self._max_record_bytes = min(self.config.max_record_bytes, self.config.max_bytes)
        self._refresh_every = self.config.refresh_every
        self._closed = False
        self._flusher_lock: FlusherLock | None = None
        self.open_events: tuple[SpoolEvent, ...] = ()
        self._reset_process_state()
        _live_spools.add(self)
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

    def __repr__(self) -> str:
        mode = "ro" if self.readonly else "rw"
        return f"<Spool {str(self.path)!r} {mode}{' closed' if self._closed else ''}>"

    # --- opening, integrity, quarantine ---------------------------------------------------------

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
                    store, ino, problem = self._try_open(check, events if audit else None)
                if store is None:
                    store, ino = self._quarantine_and_open(ino, str(problem), check, events)
                elif audit:
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

    # --- size estimate --------------------------------------------------------------------------

    def _refresh(self, *, start: bool = False) -> Acct:
        """Exact sizes into the estimate; fold a long tail; notice a replaced file; bound the WAL.

        Caller holds the lock, store open, not read-only. ``start``: an append is under way,
        start the housekeeper if it is not running (it checkpoints the WAL off this thread).
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
        if start and (keeper is None or not keeper.alive):
            keeper = self._start_housekeeper()
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

    # --- append ---------------------------------------------------------------------------------

    def append(
        self,
        entry: Mapping[str, Any],
        *,
        dest: str,
        level: str | None = None,
        logger: str | None = None,
    ) -> None:
        """Store one entry (``{"time", "time_ns", "contents"}``) durably before returning.

        The entry is encoded to its stored log here; see :meth:`append_log` for the rest.

        Raises:
            SpoolDropped: as :meth:`append_log`, plus ``SpoolEncodeError`` for an entry that
                cannot be encoded (counted as ``encode_error``).
        """
        try:
            data = encode_stored(entry)
            log_time = int(entry["time"])
        except (TypeError, ValueError, KeyError, RecursionError) as exc:
            self._count_drop(DropReason.ENCODE_ERROR, 1)
            raise SpoolEncodeError(f"entry cannot be stored: {type(exc).__name__}: {exc}") from exc
        self.append_log(data, dest=dest, log_time=log_time, level=level, logger=logger)

    def append_log(
        self,
        data: bytes,
        *,
        dest: str,
        log_time: int | None = None,
        level: str | None = None,
        logger: str | None = None,
    ) -> None:
        """Store one stored log (``RecordMapper.encode(...).data``) durably before returning.

        Returns only after the record's own commit. Threads that arrive while another
        thread's commit is in flight are committed together by the next one (group commit):
        each waits for the transaction holding its record, so the durability of every call
        is the same as with one commit per record, at a fraction of the cost under load.

        Args:
            data: one ``LogGroup.Logs`` field (tag, length, Log message).
            dest: opaque destination key; ``lease`` batches never mix destinations.
            log_time, level, logger: the record's unix second, level name and logger name,
                kept in plain columns for the CLI's filters.

        Raises:
            SpoolDropped: the record was NOT stored and the drop is already counted under
                ``exc.reason``: ``SpoolFull`` (drop_newest, full_timeout), ``SpoolRecordTooLarge``,
                ``SpoolEncodeError``, ``SpoolAppendStorageError`` (disk_full, readonly,
                permission, busy, corrupt, disk_error).
            SpoolClosedError, SpoolReadOnlyError, TypeError (data not bytes, dest not a str).
        """
        if self._pid != _PID:
            self.reopen_after_fork()
        if dest.__class__ is not str or data.__class__ is not bytes:
            raise TypeError(
                f"append_log needs bytes and a str dest, got {type(data).__name__}, "
                f"{type(dest).__name__}"
            )
        size = len(data)
        if size > self._max_record_bytes:
            self._count_drop(DropReason.TOO_LARGE, 1)
            raise SpoolRecordTooLarge(f"record is {size} bytes, above {self._max_record_bytes}")
        row = (data, self._clock(), dest, size, log_time, level, logger)
        lock = self._lock
        # Nobody waits for a group commit and nobody is inside SQLite: commit this row alone.
        if not self._group and lock.acquire(blocking=False):
            try:
                if (
                    self._fast_ok
                    and self._since_refresh < self._refresh_every
                    and self._est_rows < self._max_records
                    and self._est_bytes + size <= self._max_bytes
                ):
                    try:
                        self._store.insert(row)  # type: ignore[union-attr]  # _fast_ok => open
                    except (sqlite3.Error, UnicodeEncodeError) as exc:
                        raise self._append_failed(exc, 1) from exc
                    self._est_rows += 1
                    self._est_bytes += size
                    self._since_refresh += 1
                    return
                if self._full_until and self._drop_fast(1, size):
                    raise self._full_error()
                stored = self._append_slow([row], final=None)
            finally:
                lock.release()
        else:
            stored = self._group_commit(row)
        if stored < 0:
            stored = self._append_blocking([row])
        if stored == 0:
            raise self._full_error()

    def _drop_fast(self, k: int, smallest: int) -> bool:
        """Lock held. Refuse ``k`` rows of a spool known full a moment ago, if none can fit.

        True when they were dropped (counted as ``drop_newest`` with one statement, or in
        memory when even that cannot be written); False when the exact path must decide
        (the hint expired, or the smallest row would fit the room left at the last check).
        """
        if time.monotonic() >= self._full_until or not self._fast_ok:
            self._full_until = 0.0
            return False
        rows_left, bytes_left = self._room
        if rows_left >= 1 and smallest <= bytes_left:
            return False
        store = self._store
        assert store is not None  # _fast_ok
        now = self._clock()
        try:
            store.count_drops_now(DropReason.DROP_NEWEST, k, now)
        except sqlite3.Error:
            # The record is refused either way; its drop is kept in memory (and the ledger).
            self._pending[DropReason.DROP_NEWEST] += k
            self._pending_at = now
            self._update_fast()
        return True

    def refuse_if_full(self) -> None:
        """Raise ``SpoolFull`` (the drop counted) if the spool refuses any record right now.

        For callers that can skip work for a record that would be refused anyway: the handler
        calls it before mapping a record, so that a full ``drop_newest`` spool costs less per
        refused record than an accepted one. Only answers "full" when the last exact check
        (under ``_FULL_RECHECK`` ago) found no row left; otherwise returns and ``append_log``
        decides as usual. Cheap when not full: one attribute read.
        """
        if not self._full_until or self._pid != _PID:  # a forked child reopens in append_log
            return
        with self._lock:
            if self._full_until and self._room[0] < 1 and self._drop_fast(1, 0):
                raise self._full_error()

    def _full_error(self) -> SpoolFull:
        message = self._full_message
        if message is None:  # built once: a refusal must stay cheap
            message = self._full_message = (
                f"spool {self.path} is full ({self._max_records} records / {self._max_bytes} bytes)"
            )
        reason = (
            DropReason.FULL_TIMEOUT
            if self.config.when_full is WhenFull.BLOCK
            else DropReason.DROP_NEWEST
        )
        return SpoolFull(message, reason=reason)

    def _group_commit(self, row: Row) -> int:
        """Commit ``row`` in the next group; returns as ``_append_slow`` does for it alone.

        A queue of waiting rows (MySQL's group commit): the first thread to find no leader
        leads: it takes the write lock, takes up to ``GROUP_ROWS`` parked rows (its own
        first among them), commits them with one statement, wakes exactly their threads with
        their outcome, and hands the lead to the oldest row still parked. Every other thread
        blocks once, on a lock of its own: no broadcast, no thread commits forever.
        """
        wake = _allocate_lock()
        wake.acquire()
        slot: list[Any] = [row, None, wake]  # [row, outcome, wake]; outcome _LEAD = lead now
        with self._group_mutex:
            self._group.append(slot)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            wake.acquire()  # released by the leader: our outcome, or _LEAD
            if slot[1] is not _LEAD:
                return _outcome(slot[1])
            slot[1] = None
        taken: list[list[Any]] = []
        outcome: Any = 0
        try:
            with self._lock:
                with self._group_mutex:
                    taken, self._group = self._group[:GROUP_ROWS], self._group[GROUP_ROWS:]
                outcome = self._commit_group([s[0] for s in taken])
        except BaseException as exc:
            outcome = exc
        finally:
            with self._group_mutex:
                successor = self._group[0] if self._group else None
                if successor is None:
                    self._leading = False
            for k, waiter in enumerate(taken):
                if isinstance(outcome, BaseException):
                    waiter[1] = outcome
                else:
                    waiter[1] = 1 if k < outcome else (-1 if outcome < 0 else 0)
                if waiter is not slot:
                    waiter[2].release()
            if successor is not None:
                successor[1] = _LEAD
                successor[2].release()
        if slot[1] is None:  # the lock wait itself failed before our row was taken
            slot[1] = outcome if isinstance(outcome, BaseException) else 0
        return _outcome(slot[1])

    def _commit_group(self, rows: list[Row]) -> int:
        """Lock held: commit ``rows`` in one statement if they fit; ``_append_slow`` else."""
        k, nbytes = len(rows), sum(r[3] for r in rows)
        if (
            self._fast_ok
            and self._since_refresh < self._refresh_every
            and self._est_rows + k <= self._max_records
            and self._est_bytes + nbytes <= self._max_bytes
        ):
            store = self._store
            assert store is not None
            try:
                store.insert_group(rows)
            except (sqlite3.Error, UnicodeEncodeError) as exc:
                raise self._append_failed(exc, k) from exc
            self._est_rows += k
            self._est_bytes += nbytes
            self._since_refresh += k
            return k
        if self._full_until and self._drop_fast(k, min(r[3] for r in rows)):
            return 0
        return self._append_slow(rows, final=None)

    def append_many(self, entries: Iterable[Mapping[str, Any]], *, dest: str) -> int:
        """Store several entries in ONE transaction; returns how many were stored.

        Entries that cannot be encoded or are too large are dropped and counted individually;
        when the spool is full the policy applies to the whole call (with drop_newest or after a
        block timeout, the leading entries that fit are stored and the rest counted). Raises
        ``SpoolAppendStorageError`` if the transaction fails (nothing stored, all counted).
        """
        if self._pid != os.getpid():
            self.reopen_after_fork()
        if dest.__class__ is not str:
            raise TypeError(f"dest must be a str, got {type(dest).__name__}")
        items: list[Row] = []
        bad: Counter[str] = Counter()
        now = self._clock()
        for entry in entries:
            try:
                data = encode_stored(entry)
                log_time = int(entry["time"])
            except (TypeError, ValueError, KeyError, RecursionError):
                bad[DropReason.ENCODE_ERROR] += 1
                continue
            if len(data) > self._max_record_bytes:
                bad[DropReason.TOO_LARGE] += 1
                continue
            items.append((data, now, dest, len(data), log_time, None, None))
        for reason, n in bad.items():
            self._count_drop(reason, n)
        if not items:
            return 0
        with self._lock:
            stored = self._append_slow(items, final=None)
        if stored < 0:
            stored = self._append_blocking(items)
        return stored

    def _count_drop(self, reason: str, n: int) -> None:
        """Count a drop that involves no row: persisted now if possible, else kept in memory."""
        if self._pid != os.getpid():
            self.reopen_after_fork()
        with self._lock:
            self._pending[str(reason)] += n
            self._pending_at = self._clock()
            self._update_fast()
            if self._store is None or self._closed or self.readonly:
                return
            with contextlib.suppress(sqlite3.Error), self._write():
                pass

    def _append_failed(
        self, exc: BaseException, n: int
    ) -> SpoolAppendStorageError | SpoolEncodeError:
        """Lock held: count ``n`` dropped records for a failed write, return the error to raise."""
        self._pending_at = self._clock()
        if isinstance(exc, UnicodeEncodeError):  # dest with lone surrogates
            self._pending[DropReason.ENCODE_ERROR] += n
            self._update_fast()
            return SpoolEncodeError(f"dest is not valid UTF-8 text: {exc}")
        reason = storage_reason(exc)
        # The disk may be unwritable: persisted at the next good write (or by the housekeeper),
        # shown to other processes meanwhile through the ledger.
        self._pending[reason] += n
        if reason == "corrupt":
            self._needs_check = True
        self._update_fast()
        keeper = self._housekeeper
        if keeper is not None:
            keeper.wake()
        return SpoolAppendStorageError(
            f"append to {self.path} failed ({reason}): {exc}",
            reason=reason,
            sqlite_errorname=getattr(exc, "sqlite_errorname", None),
        )

    def _append_slow(self, items: list[Row], *, final: str | None) -> int:
        """Lock held. Refresh, then insert or apply ``when_full``.

        Returns the number stored, or -1 when ``block`` must wait (only if ``final`` is None).
        ``final`` is the drop reason to use for whatever does not fit (block timeout).
        """
        try:
            self._ensure_store(write=True)
            acct = self._refresh(start=True)
            store = self._store  # _refresh may have followed a replaced file to a new store
            assert store is not None
            k, nbytes = len(items), sum(i[3] for i in items)
            if (
                acct.total_rows + k <= self._max_records
                and acct.total_bytes + nbytes <= self._max_bytes
            ):
                if k == 1 and not self._pending:
                    store.insert(items[0])
                else:
                    with self._write() as conn:
                        store.insert_many(conn, items)
                self._est_rows += k
                self._est_bytes += nbytes
                self._since_refresh += k
                return k
            policy = self.config.when_full
            if final is None and policy is WhenFull.BLOCK:
                return -1
            with self._write() as conn:
                acct = store.reconcile(conn)  # decide on exact numbers, inside the write lock
                counts: dict[str, int] = {}
                if policy is WhenFull.DROP_OLDEST:
                    acct = self._evict(conn, store, acct, k=k, nbytes=nbytes, counts=counts)
                fit, fit_bytes = self._fitting(items, acct)
                if fit:
                    store.insert_many(conn, items[:fit])
                if fit < k:
                    reason = final or DropReason.DROP_NEWEST
                    counts[f"drop.{reason}"] = counts.get(f"drop.{reason}", 0) + k - fit
                store.add_drops(conn, counts, self._clock())
            self._est_rows = acct.total_rows + fit
            self._est_bytes = acct.total_bytes + fit_bytes
            if fit < k and policy is WhenFull.DROP_NEWEST:
                # Remember how full it is: the next refusals cost one statement (_drop_fast).
                self._room = (
                    self._max_records - self._est_rows,
                    self._max_bytes - self._est_bytes,
                )
                self._full_until = time.monotonic() + _FULL_RECHECK
            return fit
        except (sqlite3.Error, UnicodeEncodeError) as exc:
            raise self._append_failed(exc, len(items)) from exc

    def _evict(
        self,
        conn: sqlite3.Connection,
        store: SpoolQueue,
        acct: Acct,
        *,
        k: int,
        nbytes: int,
        counts: dict[str, int],
    ) -> Acct:
        need_rows = acct.total_rows + k - self._max_records
        need_bytes = acct.total_bytes + nbytes - self._max_bytes
        if need_rows <= 0 and need_bytes <= 0:
            return acct
        # Free a little more than needed so the next appends take the fast path again.
        slack = self.config.evict_slack
        if need_rows > 0:
            need_rows += int(self._max_records * slack)
        if need_bytes > 0:
            need_bytes += int(self._max_bytes * slack)
        q_rows, q_bytes, d_rows, d_bytes = store.evict_oldest(conn, need_rows, need_bytes)
        store.account_removed(conn, q_rows, q_bytes, dead_rows=-d_rows, dead_bytes=-d_bytes)
        counts[f"drop.{DropReason.DROP_OLDEST}"] = q_rows + d_rows
        return store.accounting(conn)

    def _fitting(self, items: Sequence[Row], acct: Acct) -> tuple[int, int]:
        rows, nbytes = acct.total_rows, acct.total_bytes
        fit = fit_bytes = 0
        for item in items:
            if rows + 1 > self._max_records or nbytes + item[3] > self._max_bytes:
                break
            rows, nbytes = rows + 1, nbytes + item[3]
            fit, fit_bytes = fit + 1, fit_bytes + item[3]
        return fit, fit_bytes

    def _append_blocking(self, items: list[Row]) -> int:
        """when_full=block: wait (lock released) for room up to block_timeout, then drop."""
        deadline = time.monotonic() + self.config.block_timeout
        delay = 0.001
        while True:
            remaining = deadline - time.monotonic()
            with self._lock:
                if remaining <= 0:
                    return self._append_slow(items, final=DropReason.FULL_TIMEOUT)
                self._space.clear()  # before the check: a release after it wakes the wait below
                stored = self._append_slow(items, final=None)
                if stored >= 0:
                    return stored
                self._waiting += 1
            try:
                # Same-process flushers wake us at once (ack/purge set the event); other
                # processes' progress is polled, backing off from 1 ms to 50 ms.
                self._space.wait(min(remaining, delay))
            finally:
                with self._lock:
                    self._waiting -= 1
            delay = min(delay * 2, 0.05)

    # --- leasing --------------------------------------------------------------------------------

    def lease(self, max_records: int, max_bytes: int, *, lease_seconds: float) -> Batch | None:
        """Lease the oldest READY records of one destination; ``None`` when nothing is READY.

        Expired leases revert to READY first (attempts + 1); then the oldest READY record picks
        the destination, and that destination's oldest READY records are taken in id order up to
        ``max_records`` and ``max_bytes`` (always at least one record, even if it alone is larger
        than ``max_bytes``). The batch holds the stored JSON ``texts`` (``Batch.entries`` decodes
        them on first access). A record that is not JSON any more is dead-lettered
        (``SpoolDecodeError``) instead of being returned.

        Lock hold: the rows are chosen and marked in transactions of at most
        ``config.max_txn_rows`` records that read only ``_id`` and ``nbytes``; the record data
        is read after COMMIT on the side connection (a WAL snapshot of rows only this lease
        moves), so producers wait at most one short chunk for the write lock.
        """
        if max_records < 1 or max_bytes < 1 or lease_seconds <= 0:
            raise ValueError("lease needs max_records >= 1, max_bytes >= 1, lease_seconds > 0")
        window = max(_MIN_WINDOW, 16 * max_records)
        while True:
            token = secrets.token_hex(8)
            now = self._clock()
            until = now + lease_seconds
            marked = self._mark_lease(
                token, max_records, max_bytes, window=window, now=now, until=until
            )
            if marked is None:
                return None
            dest, rows = marked
            batch, bad = self._lease_batch(token, dest, until, rows)
            if bad:
                self.dead_letter(
                    [i for i, _ in bad],
                    error_code="SpoolDecodeError",
                    message=bad[0][1],
                    request_id=None,
                )
            if batch is not None:
                return batch
            if not bad:  # our rows vanished (another instance took the flusher lock): stop
                return None

    def _mark_lease(
        self,
        token: str,
        max_records: int,
        max_bytes: int,
        *,
        window: int,
        now: float,
        until: float,
    ) -> tuple[str, list[tuple[int, int, float, int, int]]] | None:
        """Mark the lease's rows LEASED, chunk by chunk; ``(dest, rows)`` or None if no READY.

        ``rows`` are ``(_id, nbytes, enqueued_at, attempts, codec)`` in id order.
        """
        chunk = self.config.max_txn_rows
        taken = total = 0
        dest, lo, hi, stop = "", 0, 0, 0
        marked: list[tuple[int, int, float, int, int]] = []
        while taken < max_records:
            with self._locked() as store:
                try:
                    with self._write() as conn:
                        if not taken:  # the first chunk also recovers expired leases
                            recovered = store.revert_expired(conn, now)
                            store.reconcile(conn)
                            if recovered:
                                store.add_counters(conn, {"leases_recovered": recovered})
                            first = store.first_ready(conn)
                            if first is None:
                                return None
                            lo, dest = first
                            start, stop = lo, lo + window
                        else:
                            start = hi + 1
                        rows, more = store.select_ready(
                            conn, dest, start, stop, limit=min(chunk, max_records - taken),
                            max_bytes=max_bytes - total, at_least_one=not taken,
                        )  # fmt: skip
                        if not rows:
                            break
                        first_id, last_id = rows[0][0], rows[-1][0]
                        n = store.mark_leased(conn, token, dest, first_id, last_id)
                        if n != len(rows):  # cannot happen inside one transaction
                            raise SpoolError(f"lease marked {n} rows, selected {len(rows)}")
                        if taken:
                            store.extend_lease(conn, token, last_id, n)
                        else:
                            store.insert_lease(
                                conn, token=token, owner_id=self._owner_id, dest=dest,
                                lo=first_id, hi=last_id, nrows=n, now=now, lease_until=until,
                            )  # fmt: skip
                except sqlite3.Error as exc:
                    raise self._storage_error("lease", exc) from exc
            hi = last_id
            taken += n
            total += sum(r[1] for r in rows)
            marked += rows
            if not more:
                break
        return dest, marked

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

    def _read_logs(
        self, token: str, rows: list[tuple[int, int, float, int, int]]
    ) -> tuple[bytes | None, list[tuple[int, str | bytes, int]]]:
        """The leased records' data, read without the write lock (see ``lease``).

        ``(logs, [])`` when every row is a stored log and the aggregate read is exact;
        ``(None, rows)`` with ``(_id, data, codec)`` per row otherwise (v1 rows to convert).
        """
        if self._closed:
            raise SpoolClosedError(f"spool {self.path} is closed")
        lo, hi = rows[0][0], rows[-1][0]
        with self._ckpt_lock:
            try:
                conn = self._side_conn()
                if all(r[4] == CODEC_LOG for r in rows):
                    logs = SpoolQueue.read_leased_logs(conn, token, lo, hi)
                    if len(logs) == sum(r[1] for r in rows):
                        return logs, []
                return None, SpoolQueue.read_leased_rows(conn, token, lo, hi)
            except sqlite3.Error as exc:
                raise self._storage_error("lease", exc) from exc

    def _lease_batch(
        self,
        token: str,
        dest: str,
        until: float,
        rows: list[tuple[int, int, float, int, int]],
    ) -> tuple[Batch | None, list[tuple[int, str]]]:
        """The Batch of the marked rows (None if none is usable), and the undecodable ones.

        Rows a v1 spool stored as JSON are converted to stored logs here (the one place
        that knows both codecs); a row that decodes as neither is parked as bad.
        """
        if not rows:
            return None, []
        # Every row this token held, even the bad ones being dead-lettered now: ``ack``
        # relies on "no other row can carry this token" (see _settle_plan).
        ids, sizes, enqueued, attempts, _ = zip(*rows, strict=True)
        self._book_lease(token, ids, sizes)
        logs, data_rows = self._read_logs(token, rows)
        log_sizes: tuple[int, ...] = sizes
        bad: list[tuple[int, str]] = []
        if logs is None:
            by_id = {r[0]: r for r in data_rows}
            keep, pieces = [], []
            for row in rows:
                found = by_id.get(row[0])
                if found is None:  # moved by another instance meanwhile: not ours any more
                    continue
                try:
                    piece = _as_stored_log(found[1], found[2])
                except ValueError as exc:  # bit rot quick_check cannot see: park it
                    bad.append((row[0], f"{type(exc).__name__}: {exc}"))
                    continue
                keep.append(row)
                pieces.append(piece)
            if not keep:
                return None, bad
            ids, sizes, enqueued, attempts, _ = zip(*keep, strict=True)
            logs = b"".join(pieces)
            log_sizes = tuple(map(len, pieces))
        return (
            Batch(
                token=token,
                dest=dest,
                ids=ids,
                attempts=attempts,
                nbytes=sum(sizes),
                oldest_enqueued_at=min(enqueued),
                lease_until=until,
                enqueued_at=enqueued,
                logs=logs,
                sizes=sizes,
                log_sizes=log_sizes,
            ),
            bad,
        )

    def _book_lease(self, token: str, ids: tuple[int, ...], sizes: tuple[int, ...]) -> None:
        """Remember a lease's rows and sizes (this process only; a few recent leases)."""
        if not ids:
            return
        with self._book_lock:
            book = self._book
            book[token] = (ids, sizes)
            while len(book) > _BOOK_SIZE:
                del book[next(iter(book))]

    def _settle_plan(
        self, token: str | None, ids: list[int]
    ) -> list[list[tuple[int, int, tuple[int, ...], int]]] | None:
        """Transactions of ``(lo, hi, member ids, bytes)`` ranges for settling ``ids`` of a lease.

        Only for a lease this instance made and remembers (``_book``): its rows are exactly
        the ids read at lease time, and no other row can ever carry its random token. So for a
        run of ids that is contiguous among the lease's ids, the rows still holding the token
        between the run's first and last id are members of the run, and ``DELETE ... BETWEEN``
        removes nothing else; when it removes as many rows as the run has, their sizes are the
        ones read at lease time (sizes never change while leased). Anything else: None (the
        caller settles by id list).
        """
        if token is None:
            return None
        with self._book_lock:
            entry = self._book.get(token)
        if entry is None:
            return None
        lease_ids, sizes = entry
        # Positions of the wanted ids (distinct, in id order) in the lease; ids not in the
        # lease are not ours. Common case, a whole batch or a slice of it: one comparison.
        first = bisect.bisect_left(lease_ids, ids[0])
        if lease_ids[first : first + len(ids)] == tuple(ids):
            runs = [(first, first + len(ids))]  # [start, end) positions in the lease
        else:
            runs = []
            for i in ids:
                p = bisect.bisect_left(lease_ids, i)
                if p == len(lease_ids) or lease_ids[p] != i:
                    continue
                if runs and runs[-1][1] == p:
                    runs[-1] = (runs[-1][0], p + 1)
                else:
                    runs.append((p, p + 1))
        limit = self.config.max_txn_rows
        txns: list[list[tuple[int, int, tuple[int, ...], int]]] = []
        current: list[tuple[int, int, tuple[int, ...], int]] = []
        room = limit
        for run_start, end in runs:
            pos = run_start
            while pos < end:
                take = min(end - pos, room)
                members = lease_ids[pos : pos + take]
                current.append((members[0], members[-1], members, sum(sizes[pos : pos + take])))
                pos += take
                room -= take
                if not room:
                    txns.append(current)
                    current, room = [], limit
        if current:
            txns.append(current)
        return txns

    def _id_chunks(self, ids: list[int]) -> list[list[int]]:
        limit = self.config.max_txn_rows
        return [ids[i : i + limit] for i in range(0, len(ids), limit)]

    def _forget_lease(self, token: str | None) -> None:
        if token is not None:
            with self._book_lock:
                self._book.pop(token, None)

    def ack(self, target: Batch | Iterable[int], *, request_id: str | None = None) -> int:
        """Delivered: delete exactly these ids, only those still leased by this owner.

        With a ``Batch``, "this owner" is the batch's lease token; with plain ids, any current
        lease of this ``Spool`` instance. A stale owner (its lease expired and was re-leased, or
        reverted by a new flusher) deletes nothing. Records the delivery (count, time, request id)
        in the same transaction. Returns the number of records deleted.

        More than ``config.max_txn_rows`` ids are settled in several transactions (each exact,
        each recording its own deliveries), so the write lock is never held for long; a crash
        between two of them leaves the rest LEASED, to be retried (at least once).
        """
        ids, token = _ids_of(target)
        if not ids:
            return 0
        now = self._clock()
        plan = self._settle_plan(token, ids)
        chunks: list[Any] = plan if plan is not None else self._id_chunks(ids)
        done = 0
        for k, chunk in enumerate(chunks):
            last = k == len(chunks) - 1
            with self._locked() as store:
                try:
                    with self._write() as conn:
                        store.reconcile(conn)
                        if plan is not None:
                            n, nbytes = self._delete_runs(store, conn, token, chunk)
                        else:
                            n, nbytes = store.delete_leased(
                                conn, json.dumps(chunk), token, self._owner_id
                            )
                        store.account_removed(conn, n, nbytes)
                        if n:
                            store.add_counters(conn, {"delivered": n})
                            store.set_meta(
                                conn,
                                "last_success",
                                {"at": now, "request_id": request_id, "records": n},
                            )
                        if last and store.cleanup_leases(conn, token, self._owner_id):
                            self._forget_lease(token)
                except sqlite3.Error as exc:
                    raise self._storage_error("ack", exc) from exc
            done += n
            if n:
                self._full_until = 0.0  # room again: the next append checks exactly
                self._space.set()
        return done

    def _delete_runs(
        self,
        store: SpoolQueue,
        conn: sqlite3.Connection,
        token: str | None,
        runs: list[tuple[int, int, tuple[int, ...], int]],
    ) -> tuple[int, int]:
        """Delete a transaction's runs by id range (see _settle_plan); exact in every case."""
        assert token is not None
        conn.execute("SAVEPOINT settle_runs")
        n = sum(store.delete_range(conn, token, lo, hi) for lo, hi, _, _ in runs)
        if n == sum(len(m) for _, _, m, _ in runs):
            conn.execute("RELEASE settle_runs")
            return n, sum(b for _, _, _, b in runs)
        # Some rows were settled or reverted already: redo by id list, sizes from the rows.
        conn.execute("ROLLBACK TO settle_runs")
        conn.execute("RELEASE settle_runs")
        members = [i for _, _, m, _ in runs for i in m]
        return store.delete_leased(conn, json.dumps(members), token, self._owner_id)

    def release(
        self,
        target: Batch | Iterable[int],
        *,
        error_code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        throttled: bool = False,
        count_attempt: bool = True,
        status: int | None = None,
    ) -> int:
        """Retry later: back to READY with attempts + 1 and the error kept on each record.

        Only ids still leased by this owner move. With ``error_code``, also records it as the
        spool's last error (and a throttled event if ``throttled``) in the same transaction;
        ``status`` is the HTTP status of that error (None: no HTTP answer).
        ``count_attempt=False`` leaves attempts unchanged (e.g. a batch given back unsent at
        shutdown). Returns the number released. At most ``config.max_txn_rows`` ids per
        transaction (see ``ack``).
        """
        ids, token = _ids_of(target)
        if not ids:
            return 0
        now = self._clock()
        chunks = self._id_chunks(ids)
        done = 0
        for k, chunk in enumerate(chunks):
            first, last = k == 0, k == len(chunks) - 1
            with self._locked() as store:
                try:
                    with self._write() as conn:
                        n = store.release_leased(
                            conn,
                            json.dumps(chunk),
                            token,
                            self._owner_id,
                            (error_code, message, request_id),
                            count_attempt=count_attempt,
                        )
                        # Units: retried counts records given back; *_requests count the
                        # PutLogs requests whose failure gave them back (one per call).
                        failed = error_code is not None and first
                        counts = {
                            "retried": n,
                            "retry_requests": 1 if failed else 0,
                            "throttled_requests": 1 if failed and throttled else 0,
                        }
                        store.add_counters(conn, counts)
                        if error_code is not None and first:
                            self._set_last_error(
                                conn, store, error_code, message=message, request_id=request_id,
                                now=now, status=status,
                            )  # fmt: skip
                        if last and store.cleanup_leases(conn, token, self._owner_id):
                            self._forget_lease(token)
                except sqlite3.Error as exc:
                    raise self._storage_error("release", exc) from exc
            done += n
        return done

    def dead_letter(
        self,
        target: Batch | Iterable[int],
        *,
        error_code: str,
        message: str | None,
        request_id: str | None,
        attempts: int | None = None,
        status: int | None = None,
    ) -> int:
        """Give up: move these leased ids to DEAD with the error, ``dead_at`` and ``attempts``.

        ``attempts`` is the final attempt count to store (default: the record's attempts + 1);
        ``status`` is the HTTP status of the error (None: no HTTP answer). DEAD records still
        count against the bounds until replayed or purged. Returns the number moved. At most
        ``config.max_txn_rows`` ids per transaction (see ``ack``).
        """
        ids, token = _ids_of(target)
        if not ids:
            return 0
        now = self._clock()
        chunks = self._id_chunks(ids)
        done = 0
        for k, chunk in enumerate(chunks):
            first, last = k == 0, k == len(chunks) - 1
            with self._locked() as store:
                try:
                    with self._write() as conn:
                        store.reconcile(conn)
                        n, nbytes = store.move_to_dead(
                            conn, json.dumps(chunk), token, self._owner_id,
                            error=(error_code, message, request_id), attempts=attempts, now=now,
                        )  # fmt: skip
                        store.account_removed(conn, n, nbytes, dead_rows=n, dead_bytes=nbytes)
                        store.add_counters(conn, {"dead_lettered": n})
                        if first:
                            self._set_last_error(
                                conn, store, error_code, message=message, request_id=request_id,
                                now=now, status=status,
                            )  # fmt: skip
                        if last and store.cleanup_leases(conn, token, self._owner_id):
                            self._forget_lease(token)
                except sqlite3.Error as exc:
                    raise self._storage_error("dead_letter", exc) from exc
            done += n
        return done

    def replay_dead(
        self,
        ids: Iterable[int] | None = None,
        *,
        error_code: str | None = None,
        older_than: float | None = None,
    ) -> int:
        """DEAD -> READY for the matching dead letters (all of them by default).

        Args:
            ids: ``DeadLetter.id`` values (as listed by ``dead_letters()``).
            error_code: only dead letters with this error code.
            older_than: only dead letters dead for at least this many seconds.

        Replayed records are re-enqueued at the tail (new ids, enqueued_at = now, attempts 0).
        Returns the number replayed.
        """
        now = self._clock()
        ids_json = None if ids is None else json.dumps([int(i) for i in ids])
        dead_before = None if older_than is None else now - older_than
        with self._locked() as store:
            try:
                with self._write() as conn:
                    store.reconcile(conn)
                    where, params = store.dead_filter(ids_json, error_code, dead_before)
                    n, nbytes = store.replay(conn, where, params, now)
                    store.account_removed(conn, 0, 0, dead_rows=-n, dead_bytes=-nbytes)
                    store.add_counters(conn, {"replayed": n})
            except sqlite3.Error as exc:
                raise self._storage_error("replay_dead", exc) from exc
        return n

    def purge(self, state: RecordState | str) -> int:
        """Delete every record in ``state`` (``ready``, ``leased``, ``dead``) or ``all``.

        Operator action, counted as ``purged`` (not as a drop). Returns the number deleted.
        """
        state = str(state).lower()
        preds = {
            "ready": f"status < {LEASED}",
            "leased": f"status = {LEASED}",
            "all": "1",
        }
        if state not in (*preds, "dead"):
            raise ValueError(f"purge state must be ready, leased, dead or all, got {state!r}")
        with self._locked() as store:
            try:
                with self._write() as conn:
                    store.reconcile(conn)
                    q_rows = q_bytes = d_rows = d_bytes = 0
                    if state in preds:
                        q_rows, q_bytes = store.purge_queue(conn, preds[state])
                        if state != "ready":
                            conn.execute("DELETE FROM leases")
                    if state in ("dead", "all"):
                        d_rows, d_bytes = conn.execute(
                            "SELECT count(*), coalesce(sum(nbytes), 0) FROM dead_letters"
                        ).fetchone()
                        conn.execute("DELETE FROM dead_letters")
                    store.account_removed(
                        conn, q_rows, q_bytes, dead_rows=-d_rows, dead_bytes=-d_bytes
                    )
                    store.add_counters(conn, {"purged": q_rows + d_rows})
            except sqlite3.Error as exc:
                raise self._storage_error("purge", exc) from exc
        self._full_until = 0.0
        self._space.set()
        return q_rows + d_rows

    # --- flusher side: lock, lease recovery, counters, checkpoints -------------------------------

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

    def record_delivery(self, *, request_id: str | None = None, records: int = 0) -> None:
        """Record a delivery not acked through this spool (``ack`` already records its own)."""
        now = self._clock()
        with self._locked() as store:
            try:
                with self._write() as conn:
                    store.add_counters(conn, {"delivered": records})
                    store.set_meta(
                        conn,
                        "last_success",
                        {"at": now, "request_id": request_id, "records": records},
                    )
            except sqlite3.Error as exc:
                raise self._storage_error("record_delivery", exc) from exc

    def record_error(
        self,
        *,
        code: str,
        message: str,
        request_id: str | None = None,
        throttled: bool = False,
        status: int | None = None,
    ) -> None:
        """Record the last delivery error (and a throttled event) without moving records."""
        now = self._clock()
        with self._locked() as store:
            try:
                with self._write() as conn:
                    self._set_last_error(
                        conn, store, code, message=message, request_id=request_id, now=now,
                        status=status,
                    )  # fmt: skip
                    store.add_counters(conn, {"throttled_requests": 1 if throttled else 0})
            except sqlite3.Error as exc:
                raise self._storage_error("record_error", exc) from exc

    @staticmethod
    def _set_last_error(
        conn: sqlite3.Connection,
        store: SpoolQueue,
        code: str,
        *,
        message: str | None,
        request_id: str | None,
        now: float,
        status: int | None = None,
    ) -> None:
        store.set_meta(
            conn,
            "last_error",
            {
                "code": code,
                "message": message or "",
                "request_id": request_id,
                "at": now,
                "status": status,
            },
        )

    def checkpoint(self, mode: str = "PASSIVE") -> CheckpointResult:
        """Run a WAL checkpoint on a dedicated connection (the flusher calls this, not producers).

        PASSIVE never waits for anybody; TRUNCATE (occasionally) also shrinks the WAL file to 0,
        waiting up to busy_timeout for readers/writers.
        """
        mode = mode.upper()
        if mode not in _CHECKPOINT_MODES:
            raise ValueError(f"checkpoint mode must be one of {sorted(_CHECKPOINT_MODES)}")
        if self._pid != os.getpid():
            self.reopen_after_fork()
        if self._closed:
            raise SpoolClosedError(f"spool {self.path} is closed")
        if self.readonly:
            raise SpoolReadOnlyError(f"spool {self.path} was opened read-only")
        with self._ckpt_lock:
            try:
                busy, log, done = (
                    self._side_conn().execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
                )
            except sqlite3.Error as exc:
                raise self._storage_error("checkpoint", exc) from exc
        return CheckpointResult(bool(busy), int(log), int(done))

    # --- housekeeping (housekeeper.py's thread) ---------------------------------------------

    def _start_housekeeper(self) -> Housekeeper | None:
        """Lock held. Start this instance's housekeeper; None if no thread can be started."""
        if self.readonly or self._closed:
            return None
        keeper = Housekeeper(self)
        try:
            keeper.start()
        except RuntimeError:  # cannot start new thread: producers fall back (see _refresh)
            return None
        self._housekeeper = keeper
        keeper.wake()  # first tick now: claim the ledger slot before anything goes wrong
        return keeper

    def _stop_housekeeper(self) -> None:
        keeper, self._housekeeper = self._housekeeper, None
        if keeper is not None:
            keeper.stop(timeout=max(1.0, float(self.config.busy_timeout)))

    def _housekeep(self) -> bool:
        """One tick: persist/publish in-memory drops, checkpoint a grown WAL, raise the mark.

        Runs on the housekeeper thread; False once the spool is closed (the thread ends).
        """
        if self._closed or self._pid != os.getpid():
            return False
        now = self._clock()
        inherited = self._ledger.claim(now)
        if inherited:  # drops of a dead process that never reached the database
            with self._lock:
                self._pending.update(inherited)
                self._pending_at = now
                self._update_fast()
        self._settle_pending(now)
        self._watch_free_space()
        self._checkpoint_if_grown()
        self._raise_mark(now)
        return not self._closed

    def _watch_free_space(self) -> None:
        """Switch the WAL upkeep to its small-disk mode and back (see _TIGHT_FREE)."""
        try:
            fs = os.statvfs(self.path.parent)
            wal = os.stat(f"{self.path}-wal").st_size
        except OSError:
            return
        free = fs.f_bavail * fs.f_frsize
        tight = free < max(_TIGHT_FREE, 4 * wal)
        if tight != self._tight:
            self._tight = tight
            # Producers refresh (and wake us) every this many appends; read on their fast path.
            every = self.config.refresh_every
            self._refresh_every = min(every, _TIGHT_REFRESH) if tight else every

    def _settle_pending(self, now: float) -> None:
        """Persist drops counted in memory; publish in the ledger what is still pending."""
        with self._lock:
            if self._closed or self._store is None:
                return
            if self._pending:
                # Ledger first, without them: a reader may miss them for an instant but never
                # counts them twice (here and in the database).
                self._publish({}, None, now)
                with contextlib.suppress(sqlite3.Error), self._write():
                    pass
            pending = dict(self._pending)
            at = self._pending_at if pending else None
            state = (tuple(sorted(pending.items())), at)
            if state != self._published or now - self._published_at >= 5.0:
                self._publish(pending, at, now)

    def _publish(self, pending: dict[str, int], at: float | None, now: float) -> None:
        if self._ledger.publish(pending, at, now):
            self._published = (tuple(sorted(pending.items())), at)
            self._published_at = now

    def _checkpoint_if_grown(self) -> None:
        """Keep the WAL short: checkpoint what producers wrote, restart it, truncate when idle.

        Three steps, each only when needed:

        1. A PASSIVE checkpoint on the side connection whenever the WAL changed: copies the
           frames into the database file without blocking anybody. After it, a damaged WAL can
           only lose what was written since (at most about one tick).
        2. (On the producers' side, ``_refresh``.) When writers keep the WAL from restarting
           (a sustained burst appends during every checkpoint, so it never catches up) and the
           file passes ``wal_max_bytes``, the producer that notices catches up under its lock;
           the next write starts the WAL over. Without restarts the file would grow for as
           long as the burst lasts, and a damaged old frame would make SQLite recover older
           page versions over newer ones.
        3. When nothing was written for a whole tick after a complete checkpoint: TRUNCATE, so
           an idle spool has an empty WAL (nothing a damaged ``-wal`` could take).
        """
        try:
            st = os.stat(f"{self.path}-wal")
        except FileNotFoundError:
            return
        seen = (st.st_size, st.st_mtime_ns)
        if self._closed:
            return
        if seen == self._wal_seen:
            if st.st_size and not self._wal_idle:
                self._wal_idle = True  # one quiet tick first: writes may be about to resume
            elif st.st_size:
                self._truncate_idle_wal()
            return
        self._wal_idle = False
        result = self.checkpoint("PASSIVE")
        if result.busy or result.wal_frames < 0:
            return  # another checkpointer is at work: try again next tick
        try:
            after = os.stat(f"{self.path}-wal")
        except FileNotFoundError:
            return
        if (after.st_size, after.st_mtime_ns) != seen:
            return  # written to meanwhile: those frames are copied at the next tick
        if result.checkpointed_frames >= result.wal_frames:
            self._wal_seen = seen

    def _truncate_idle_wal(self) -> None:
        """TRUNCATE an idle WAL to 0 bytes, waiting for nobody (a short busy timeout)."""
        with self._ckpt_lock:
            if self._closed:
                return
            conn = self._side_conn()
            # TRUNCATE holds the write lock while it waits for readers: keep that wait short,
            # a writer arriving meanwhile must not wait for a slow reader.
            conn.execute("PRAGMA busy_timeout = 20")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.config.busy_timeout * 1000)}")
        if not busy:
            with contextlib.suppress(OSError):
                st = os.stat(f"{self.path}-wal")
                self._wal_seen = (st.st_size, st.st_mtime_ns)

    def _raise_mark(self, now: float) -> None:
        """Record in the ledger how many records this file has accepted (see ledger.py)."""
        if self._closed:
            return
        with self._ckpt_lock:
            if self._closed:
                return
            conn = self._side_conn()
            conn.execute("BEGIN")  # one snapshot: accounting row and tail agree
            try:
                created = self._created_at
                if created is None:
                    row = conn.execute("SELECT value FROM meta WHERE key = 'created_at'").fetchone()
                    created = self._created_at = float(json.loads(row[0])) if row else None
                gen, acct_id, in_rows = conn.execute(
                    "SELECT gen, acct_id, in_rows FROM accounting WHERE k = 0"
                ).fetchone()
                cached = self._mark_tail
                if cached is not None and cached[:2] == (gen, acct_id):
                    start, rows = cached[2], cached[3]
                else:
                    start, rows = acct_id, 0
                n, mx = conn.execute(
                    f"SELECT count(*), max(_id) FROM {QUEUE_TABLE} WHERE _id > ?", (start,)
                ).fetchone()
            finally:
                conn.execute("COMMIT")
        rows += int(n)
        self._mark_tail = (int(gen), int(acct_id), int(mx) if mx is not None else start, rows)
        if created is not None:
            self._ledger.raise_mark(created, int(in_rows) + rows, now)

    # --- reading --------------------------------------------------------------------------------

    def stats(self) -> SpoolStats:
        """A consistent snapshot (one read transaction); cheap: no full scans."""
        now = self._clock()
        with self._locked(write=False) as store:
            try:
                with store.read_txn() as conn:
                    acct = store.accounting(conn)
                    leases, leased_rows, leased_bytes = store.leased_totals(conn)
                    oldest = conn.execute(
                        f"SELECT timestamp FROM {QUEUE_TABLE} WHERE status < {LEASED} "
                        "ORDER BY _id LIMIT 1"
                    ).fetchone()
                    counters = {
                        str(k): int(v) for k, v in conn.execute("SELECT name, value FROM counters")
                    }
                    meta = {
                        str(k): json.loads(v)
                        for k, v in conn.execute("SELECT key, value FROM meta")
                    }
                    events = conn.execute(
                        "SELECT at, kind, detail FROM events ORDER BY id DESC LIMIT 20"
                    ).fetchall()
                    version = read_schema_version(conn)
            except sqlite3.Error as exc:
                raise self._storage_error("stats", exc) from exc
            pending = dict(self._pending)
            pending_at = self._pending_at
        # Drops other processes (or this file's dead writers) could not write to the database.
        ledger = read_ledger(self.path)
        owner = None if self.readonly else self._owner_id
        dropped: Counter[str] = Counter(
            {k.removeprefix("drop."): v for k, v in counters.items() if k.startswith("drop.")}
        )
        dropped.update(pending)
        dropped.update(ledger.pending_except(owner))
        drop_times = [
            t
            for t in (
                counters[LAST_DROP] / 1000 if LAST_DROP in counters else None,
                pending_at if pending else None,
                ledger.last_drop_except(owner),
            )
            if t is not None
        ]
        success = meta.get("last_success") or {}
        err = meta.get("last_error")
        oldest_at = float(oldest[0]) if oldest else None
        return SpoolStats(
            path=str(self.path),
            schema_version=version,
            ready_records=acct.live_rows - leased_rows,
            ready_bytes=acct.live_bytes - leased_bytes,
            leased_records=leased_rows,
            leased_bytes=leased_bytes,
            dead_records=acct.dead_rows,
            dead_bytes=acct.dead_bytes,
            active_leases=leases,
            oldest_ready_enqueued_at=oldest_at,
            oldest_ready_age=None if oldest_at is None else max(0.0, now - oldest_at),
            appended=acct.in_rows + acct.tail_rows - counters.get("replayed", 0),
            delivered=counters.get("delivered", 0),
            retried=counters.get("retried", 0),
            dead_lettered=counters.get("dead_lettered", 0),
            replayed=counters.get("replayed", 0),
            purged=counters.get("purged", 0),
            # "throttled" is the name spools before 0.3 wrote (the same unit: requests).
            throttled_requests=counters.get("throttled_requests", 0) + counters.get("throttled", 0),
            retry_requests=counters.get("retry_requests", 0),
            leases_recovered=counters.get("leases_recovered", 0),
            dropped=MappingProxyType({k: v for k, v in dropped.items() if v}),
            last_drop_at=max(drop_times) if drop_times else None,
            last_success_at=success.get("at"),
            last_success_request_id=success.get("request_id"),
            last_error=(
                LastError(
                    str(err["code"]),
                    str(err.get("message", "")),
                    err.get("request_id"),
                    float(err["at"]),
                    err.get("status"),
                )
                if err
                else None
            ),
            file_bytes=_size(self.path),
            wal_bytes=_size(Path(f"{self.path}-wal")),
            flusher_pid=self.flusher_pid(),
            events=tuple(
                SpoolEvent(float(at), str(kind), MappingProxyType(json.loads(detail)))
                for at, kind, detail in events
            ),
        )

    snapshot = stats

    def high_water(self) -> int:
        """The largest id in the queue table now (0 when empty); O(log n).

        Every record appended before this call has an id <= the returned value until it leaves
        the queue, so ``pending_through(high_water())`` reaching 0 means all of them were
        delivered, dead-lettered or dropped. Ids are max(_id) + 1 (no AUTOINCREMENT, see
        schema.py): once the newest rows are deleted a later append may reuse an id <= the
        mark, which can only make a waiter wait for that newer record too, never stop early.
        """
        with self._locked(write=False) as store:
            try:
                row = store.conn.execute(f"SELECT max(_id) FROM {QUEUE_TABLE}").fetchone()
            except sqlite3.Error as exc:
                raise self._storage_error("high_water", exc) from exc
        return int(row[0] or 0)

    def pending_through(self, max_id: int) -> int:
        """READY + LEASED records with id <= ``max_id`` (a primary-key range count: O(that)).

        DEAD records are not pending: they left the queue table.
        """
        with self._locked(write=False) as store:
            try:
                row = store.conn.execute(
                    f"SELECT count(*) FROM {QUEUE_TABLE} WHERE _id <= ?", (int(max_id),)
                ).fetchone()
            except sqlite3.Error as exc:
                raise self._storage_error("pending_through", exc) from exc
        return int(row[0])

    def dead_letters(self, limit: int = 100, *, after_id: int = 0) -> list[DeadLetter]:
        """DEAD records in id order (page with ``after_id``); undecodable entries as raw text."""
        with self._locked(write=False) as store:
            try:
                rows = store.conn.execute(
                    "SELECT _id, orig_id, dest, data, nbytes, timestamp, attempts, err_code, "
                    f"err_message, err_request_id, dead_at, {store.codec_column} "
                    "FROM dead_letters WHERE _id > ? ORDER BY _id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error("dead_letters", exc) from exc
        out = []
        for r in rows:
            entry = _shown(r[3], r[11])
            out.append(
                DeadLetter(r[0], r[1], r[2], entry, r[4], r[5], r[6], r[7], r[8], r[9], r[10])
            )
        return out

    def queued(
        self, state: RecordState | str, limit: int = 100, *, after_id: int = 0
    ) -> list[QueuedRecord]:
        """READY or LEASED records in id order (page with ``after_id``).

        One short read per call, so a long listing never holds a snapshot that would keep the
        flusher's checkpoints from trimming the WAL. Undecodable entries come back as raw text.
        """
        state = RecordState(str(state).lower())
        if state is RecordState.DEAD:
            raise ValueError("queued() lists READY or LEASED records; use dead_letters()")
        predicate = f"status < {LEASED}" if state is RecordState.READY else f"status = {LEASED}"
        with self._locked(write=False) as store:
            try:
                rows = store.conn.execute(
                    "SELECT _id, data, timestamp, dest, nbytes, attempts, err_code, err_message, "
                    f"err_request_id, {store.codec_column} FROM {QUEUE_TABLE} "
                    f"WHERE _id > ? AND {predicate} "
                    "ORDER BY _id LIMIT ?",
                    (after_id, limit),
                ).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error("queued", exc) from exc
        out = []
        for r in rows:
            entry = _shown(r[1], r[9])
            record = QueuedRecord(
                int(r[0]), state, str(r[3]), entry, int(r[4]), float(r[2]), int(r[5]),
                r[6], r[7], r[8],
            )  # fmt: skip
            out.append(record)
        return out

    def quick_check(self) -> list[str]:
        """``PRAGMA quick_check`` rows (``["ok"]`` when the file is sound); reads only."""
        with self._locked(write=False) as store:
            try:
                return [str(r[0]) for r in store.conn.execute("PRAGMA quick_check").fetchall()]
            except sqlite3.Error as exc:
                raise self._storage_error("quick_check", exc) from exc

    def vacuum(self) -> None:
        """Rebuild the file to give free pages back to the filesystem (persist-queue's VACUUM).

        Holds the write lock for the whole rebuild: an operator action, not for the hot path.
        """
        with self._locked() as store:
            pass  # opened/reopened under the lock; VACUUM below takes the same lock itself
        try:
            try:
                store.shrink_disk_usage()  # takes tran_lock (our lock) itself
            except sqlite3.OperationalError as busy:
                busy_retry(store.shrink_disk_usage, busy, float(self.config.busy_timeout))
        except sqlite3.Error as exc:
            raise self._storage_error("vacuum", exc) from exc

    # --- lifecycle ------------------------------------------------------------------------------

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


def _outcome(value: Any) -> int:
    """A group-commit outcome: raise the shared error, or the per-row count (1, 0, -1)."""
    if isinstance(value, BaseException):
        raise value
    return int(value)


def _as_stored_log(data: str | bytes, codec: int) -> bytes:
    """A leased row's data as a stored log (v1 JSON rows are converted). Raises ValueError."""
    if codec == CODEC_LOG:
        if not isinstance(data, bytes):
            raise ValueError("a stored log must be a blob")
        decode_stored(data, CODEC_LOG)  # only reached for a batch whose aggregate failed
        return data
    if codec == CODEC_JSON:
        return encode_stored(decode_stored(data, CODEC_JSON))
    raise ValueError(f"unknown record codec {codec}")


def _shown(data: str | bytes, codec: int) -> Any:
    """A stored record as the CLI shows it: the entry, or the raw data if it does not decode."""
    try:
        return decode_stored(data, codec)
    except ValueError:
        return data if isinstance(data, str) else data.decode("utf-8", "backslashreplace")


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
