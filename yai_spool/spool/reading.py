# ruff: noqa: S608 - SQL text only interpolates module constants (table name, status codes)
# and fixed fragments chosen here; every value is a bound parameter.
"""``SpoolReading``: what a ``Spool`` tells without changing records (stats, listings, checks).

Owns: ``stats()`` (one read transaction, plus the ledger's drops of other processes), the
drain marks (``high_water`` / ``pending_through``), the CLI's listings (``queued``,
``dead_letters``, decoded for display, raw when a record does not decode), ``quick_check``
and ``vacuum``. Every read is one short transaction, so a long listing never keeps a
checkpoint from trimming the WAL.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from yai_spool.spool.connection import busy_retry
from yai_spool.spool.flushing import SpoolFlushing
from yai_spool.spool.ledger import read as read_ledger
from yai_spool.spool.schema import (
    LEASED,
    QUEUE_TABLE,
    decode_stored,
    read_schema_version,
)
from yai_spool.spool.store import LAST_DROP
from yai_spool.spool.types import (
    DeadLetter,
    LastError,
    QueuedRecord,
    RecordState,
    SpoolEvent,
    SpoolStats,
)

__all__ = ["SpoolReading"]


class SpoolReading(SpoolFlushing):
    """Snapshots and listings of a ``Spool`` (see the module docstring)."""

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
        (row,) = self._query("high_water", f"SELECT max(_id) FROM {QUEUE_TABLE}")
        return int(row[0] or 0)

    def pending_through(self, max_id: int) -> int:
        """READY + LEASED records with id <= ``max_id`` (a primary-key range count: O(that)).

        DEAD records are not pending: they left the queue table.
        """
        sql = f"SELECT count(*) FROM {QUEUE_TABLE} WHERE _id <= ?"
        (row,) = self._query("pending_through", sql, (int(max_id),))
        return int(row[0])

    def dead_letters(self, limit: int = 100, *, after_id: int = 0) -> list[DeadLetter]:
        """DEAD records in id order (page with ``after_id``); undecodable entries as raw text."""
        rows = self._query(
            "dead_letters",
            "SELECT _id, orig_id, dest, data, nbytes, timestamp, attempts, err_code, "
            "err_message, err_request_id, dead_at, {codec} "
            "FROM dead_letters WHERE _id > ? ORDER BY _id LIMIT ?",
            (after_id, limit),
        )
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
        rows = self._query(
            "queued",
            "SELECT _id, data, timestamp, dest, nbytes, attempts, err_code, err_message, "
            f"err_request_id, {{codec}} FROM {QUEUE_TABLE} WHERE _id > ? AND {predicate} "
            "ORDER BY _id LIMIT ?",
            (after_id, limit),
        )
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
        return [str(r[0]) for r in self._query("quick_check", "PRAGMA quick_check")]

    def _query(self, op: str, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of one read on this process's connection; SQLite failures typed.

        ``{codec}`` in ``sql`` stands for the row's codec column (``SpoolQueue.codec_column``:
        a read-only view of a v1 file has none), resolved on the connection actually used.
        """
        with self._locked(write=False) as store:
            try:
                sql = sql.replace("{codec}", store.codec_column)
                return store.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._storage_error(op, exc) from exc

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
