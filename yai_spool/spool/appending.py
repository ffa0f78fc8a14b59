"""``SpoolAppending``: the append path of a ``Spool`` (the hot path), bounds and ``when_full``.

Owns: ``append`` / ``append_log`` / ``append_many``, the fast path (one autocommit INSERT
while the estimate says the record fits), group commit, the exact slow path that applies
``when_full`` (evict, refuse, or block), the drop_newest fast refusal (invariant 11), and
counting every refused record once (invariants 1, 5, 6 of the package docstring).

Hot path: ``append_log`` reads only attributes and module globals (``_PID``, not
``os.getpid()``) before the INSERT; nothing here may add a call per record.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from yai_spool.spool.common import ENCODE_FAILURES, append_type_error, encode_error, stored_entry
from yai_spool.spool.exceptions import (
    SpoolAppendStorageError,
    SpoolEncodeError,
    SpoolFull,
    SpoolRecordTooLarge,
    storage_reason,
)
from yai_spool.spool.store import GROUP_ROWS, Acct, Row, SpoolQueue
from yai_spool.spool.types import (
    DropReason,
    WhenFull,
)
from yai_spool.spool.upkeep import SpoolUpkeep

__all__ = ["SpoolAppending"]

# Group commit: "you lead the next group" (see SpoolAppending._group_commit); a lock per waiter.
_LEAD: Final = object()
_allocate_lock: Final = threading.Lock
# A spool found full (when_full="drop_newest") is taken at its word for this long before its
# exact size is read again (at once after an ack or purge of this instance): refusing a record
# must not cost a size query and a transaction each time (issue: 63 us vs 24 us per record).
# Another process's acks are therefore noticed up to this late; drops stay exact and counted.
_FULL_RECHECK: Final = 0.05

# This process's pid, for the append path (os.getpid() is a system call per record); the
# at-fork hook keeps it right in a child.
_PID = os.getpid()


def _new_pid_in_child() -> None:
    global _PID  # noqa: PLW0603 - one process-wide fact, changed only by fork()
    _PID = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_pid_in_child)


class SpoolAppending(SpoolUpkeep):
    """The append path of a ``Spool`` (see the module docstring)."""

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
            data, log_time = stored_entry(entry)
        except ENCODE_FAILURES as exc:
            self._count_drop(DropReason.ENCODE_ERROR, 1)
            raise encode_error(exc) from exc
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
            raise append_type_error(data, dest)
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
                data, log_time = stored_entry(entry)
            except ENCODE_FAILURES:
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
            acct = self._refresh()
            keeper = self._housekeeper
            if keeper is None or not keeper.alive:
                # It checkpoints the WAL off this thread; a first tick at once.
                self._start_housekeeper()
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


def _outcome(value: Any) -> int:
    """A group-commit outcome: raise the shared error, or the per-row count (1, 0, -1)."""
    if isinstance(value, BaseException):
        raise value
    return int(value)
