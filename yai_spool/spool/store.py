# ruff: noqa: S608 - SQL text only interpolates module constants (table name, status codes) and
# fixed predicate fragments chosen in this module; every value is a bound parameter.
"""SQL layer of the spool: ``SpoolQueue``, a ``persistqueue.SQLiteAckQueue`` subclass.

Owns: the SQLite connection (PRAGMAs, read-only URI mode), every DML statement, transactions and
the size accounting. It holds no policy (bounds, drops, fork, quarantine live in ``core.py``) and
no lock: every method except ``insert`` and the stock readers must be called with the caller's
per-process lock held (``tran_lock``, which ``core.Spool`` sets to its own lock).

Accounting invariant (kept by every transaction that removes rows, see ``reconcile`` and
``account_removed``): live rows = ``in_rows - out_rows`` + rows with ``_id > acct_id``; every
row ever removed from the queue table had ``_id <= acct_id`` when it was removed, and after a
removal ``acct_id <= max(_id)`` so new rows (``max(_id) + 1``) always land in the tail. This makes
``append`` a single-page insert while sizes stay exact for every process.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import operator
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, NoReturn, TypeAlias

from persistqueue.sqlackqueue import SQLiteAckQueue

from yai_spool.spool.connection import (
    _BUSY_FIRST,  # noqa: F401 - the private names are importable from here as before the move
    _BUSY_MAX,  # noqa: F401
    _NEVER_CLOSE,  # noqa: F401
    CorruptFileError,
    _is_busy,  # noqa: F401
    busy_retry,
    configure,
    connect,
    is_corrupt,
    keep_forever,
    open_connection,
)
from yai_spool.spool.connection import is_corrupt as _is_corrupt  # noqa: F401
from yai_spool.spool.schema import (
    CODEC_JSON,
    CODEC_LOG,
    LEASED,
    QUEUE_TABLE,
    READY,
    StoredSerializer,
    check_compatible,
    ensure_schema,
    read_schema_version,
)

__all__ = [
    "GROUP_ROWS",
    "LAST_DROP",
    "Acct",
    "CorruptFileError",
    "Held",
    "Row",
    "RowError",
    "SpoolQueue",
    "busy_retry",
    "configure",
    "connect",
    "keep_forever",
    "open_connection",
]

Q: Final = QUEUE_TABLE
_INSERT: Final = (
    f"INSERT INTO {Q} (data, timestamp, status, dest, nbytes, codec, log_time, level, logger) "
    f"VALUES (?, ?, {READY}, ?, ?, {CODEC_LOG}, ?, ?, ?)"
)
# One row to insert: (data, enqueued_at, dest, nbytes, log_time, level, logger).
Row = tuple[bytes, float, str, int, int | None, str | None, str | None]
# A group commit inserts its rows with ONE multi-row statement: one sqlite3_step, so the
# committing thread gives up the GIL once per group, not once per row (under contention
# each give-up costs a wait for the GIL to come back). Bounded, so the SQL text (cached per
# size by sqlite3's statement cache) and its parameter count stay small.
GROUP_ROWS: Final = 64
_ROW_VALUES: Final = f"(?, ?, {READY}, ?, ?, {CODEC_LOG}, ?, ?, ?)"
_INSERT_ROWS: Final = tuple(
    _INSERT.split(" VALUES ")[0] + " VALUES " + ", ".join([_ROW_VALUES] * n)
    for n in range(GROUP_ROWS + 1)
)
_IDS: Final = "_id IN (SELECT value FROM json_each(?))"
#: The counter holding the unix milliseconds of the most recent drop (a max, not a sum).
LAST_DROP: Final = "last_drop_ms"
_UPSERT_DROP: Final = (
    "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = "
    f"CASE WHEN name = '{LAST_DROP}' THEN max(value, excluded.value) "
    "ELSE value + excluded.value END"
)
_UPSERT_DROPS_2: Final = _UPSERT_DROP.replace("VALUES (?, ?)", "VALUES (?, ?), (?, ?)")


class Held(NamedTuple):
    """A settle's rows: the ids given that are still leased by its owner (``SpoolQueue.held``)."""

    where: str  # SQL predicate over the queue table
    params: tuple[str, str]  # its parameters: the ids as JSON, the lease token or owner id


#: ``(code, message, request_id)`` kept on each released or dead record (``Failure.row_error``).
RowError: TypeAlias = tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Acct:
    """Exact sizes of one snapshot (see the accounting invariant above)."""

    gen: int
    acct_id: int
    in_rows: int
    in_bytes: int
    out_rows: int
    out_bytes: int
    dead_rows: int
    dead_bytes: int
    tail_rows: int
    tail_bytes: int
    tail_max_id: int

    @property
    def live_rows(self) -> int:
        return self.in_rows + self.tail_rows - self.out_rows

    @property
    def live_bytes(self) -> int:
        return self.in_bytes + self.tail_bytes - self.out_bytes

    @property
    def total_rows(self) -> int:
        return self.live_rows + self.dead_rows

    @property
    def total_bytes(self) -> int:
        return self.live_bytes + self.dead_bytes


@dataclass(frozen=True, slots=True)
class _Setup:
    """How ``SpoolQueue._init`` opens and sets up the file: read once, at open."""

    synchronous: str  # PRAGMA synchronous
    wal_max_bytes: int  # journal_size_limit
    now: float  # the creation time of a new schema
    check: bool  # run quick_check before anything writes
    # Called with the number of WAL frames SQLite accepted at open (its mxFrame; None if
    # unknown), before anything of ours writes: core.Spool compares it with what the file
    # holds (walcheck.judge), while the damaged WAL is still as found.
    wal_probe: Callable[[int | None], None] | None


def _unsupported(name: str) -> NoReturn:
    raise NotImplementedError(
        f"SQLiteAckQueue.{name}() is replaced in yai-spool: use Spool.append/lease/ack/release/"
        "dead_letter (per-record calls would bypass leases and size accounting)"
    )


class SpoolQueue(SQLiteAckQueue):
    """persist-queue's ack queue with the yai-spool schema, connection setup and batch SQL.

    Kept from persist-queue: constructor plumbing (directory + ``db_file_name``), the table name
    ``ack_queue_<name>`` and its first columns ``_id, data, timestamp, status`` with ``AckStatus``
    codes, ``tran_lock``, and the stock readers ``queue()``, ``ready_count()``,
    ``unack_count()``, ``shrink_disk_usage()``. Replaced: schema and connection setup, and the
    per-record mutators (``put/get/ack/nack/ack_failed/update/resume_unack_tasks``), which raise.
    """

    _TABLE_NAME = "ack_queue"
    _KEY_COLUMN = "_id"

    def __init__(
        self,
        file: str,
        *,
        readonly: bool,
        synchronous: str,
        busy_timeout: float,
        wal_max_bytes: int,
        now: float,
        check: bool = False,
        wal_probe: Callable[[int | None], None] | None = None,
    ) -> None:
        self.file = file
        self.readonly = readonly
        self._setup = _Setup(synchronous, wal_max_bytes, now, check, wal_probe)
        self._creator_pid = os.getpid()
        self._tail_cache: tuple[int, int, int, int, int] | None = None
        self.schema_version = self.previous_schema_version = 0
        super().__init__(
            os.path.dirname(file) or ".",
            name="spool",
            multithreading=True,
            timeout=busy_timeout,
            serializer=StoredSerializer,
            db_file_name=os.path.basename(file),
            auto_resume=False,  # stock resume reverts EVERY lease, including a live flusher's
        )

    # --- persist-queue hooks -------------------------------------------------------------------

    def _new_db_connection(
        self, path: str, multithreading: bool, timeout: float
    ) -> sqlite3.Connection:
        del path, multithreading  # we open exactly self.file, always shareable across threads
        return open_connection(self.file, readonly=self.readonly, busy_timeout=timeout)

    def _init(self) -> None:
        # Replaces SQLiteBase._init: no makedirs (core.py creates the directory 0700), no stock
        # CREATE TABLE, no COUNT(*) of the whole table at open, and ONE connection for both
        # persist-queue roles (a second writer connection would only contend for the lock).
        # Order matters: everything that can refuse the file (header, foreign/newer schema,
        # quick_check) only READS, so a refused or corrupt file is left byte-for-byte as found.
        conn = self._conn = self._new_db_connection(self.path, self.multithreading, self.timeout)
        # persist-queue's SQLBase.__init__ assigns None to both (untyped), so mypy infers None.
        self._getter = self._putter = conn  # type: ignore[assignment]
        self._cursor = conn.cursor()
        try:
            self.schema_version = read_schema_version(conn)
            if not self.readonly:
                check_compatible(conn)
            setup = self._setup
            if setup.check:
                problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)")]
                if problems != ["ok"]:
                    raise CorruptFileError("; ".join(problems[:5]))
            if setup.wal_probe is not None and not self.readonly:
                # Recovery ran at the first read above; a PASSIVE checkpoint reports how many
                # WAL frames it accepted. Before ensure_schema: a damaged WAL may have lost the
                # very transaction that created the schema, which would then be written anew.
                busy, log, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                setup.wal_probe(None if busy else int(log))
            if not self.readonly:
                configure(conn, synchronous=setup.synchronous, wal_max_bytes=setup.wal_max_bytes)
                # Writes wait for other processes' locks in busy_retry (see there).
                conn.execute("PRAGMA busy_timeout = 0")
                with self.write_txn() as txn:
                    self.previous_schema_version = ensure_schema(txn, setup.now)
                self.schema_version = read_schema_version(conn)
            if conn.execute("SELECT json_valid('[1]')").fetchone()[0] != 1:
                raise sqlite3.NotSupportedError("SQLite JSON functions are required")
        except BaseException as exc:
            if isinstance(exc, CorruptFileError) or is_corrupt(exc):
                # Closing could checkpoint into the damaged file or delete its WAL: the file
                # goes to quarantine exactly as found.
                keep_forever(self)
            else:
                self._cursor.close()
                conn.close()
            raise

    def put(self, item: Any) -> int | None:
        _unsupported("put")

    def get(self, *args: Any, **kwargs: Any) -> Any:
        _unsupported("get")

    def ack(self, *args: Any, **kwargs: Any) -> int | None:
        _unsupported("ack")

    def nack(self, *args: Any, **kwargs: Any) -> int | None:
        _unsupported("nack")

    def ack_failed(self, *args: Any, **kwargs: Any) -> int | None:
        _unsupported("ack_failed")

    def update(self, item: Any, id: int | None = None) -> int:
        _unsupported("update")

    def resume_unack_tasks(self) -> None:
        _unsupported("resume_unack_tasks")

    def clear_acked_data(self, *args: Any, **kwargs: Any) -> None:
        _unsupported("clear_acked_data")

    def _count(self) -> int:
        # Stock semantics (records not yet leased), computed instead of kept in self.total,
        # which would be wrong as soon as a second process writes the file.
        return int(
            self._conn.execute(f"SELECT count(*) FROM {Q} WHERE status < {LEASED}").fetchone()[0]
        )

    @property
    def size(self) -> int:
        return self._count()

    def close(self) -> None:
        # Never close a connection inherited across fork(): closing may checkpoint or delete the
        # parent's WAL using the parent's stale state (SQLite: do not carry connections across
        # fork). core.py keeps such objects alive forever instead.
        if os.getpid() == self._creator_pid:
            with contextlib.suppress(sqlite3.Error):
                # Finalize our cached cursor's statement first: sqlite3_close_v2 keeps a
                # connection with live statements (a traceback can hold this object) as a
                # "zombie" whose files stay open.
                cursor = getattr(self, "_cursor", None)
                if cursor is not None:
                    cursor.close()
                self._conn.close()

    def __del__(self) -> None:
        if getattr(self, "_conn", None) is not None:
            self.close()

    @property
    def codec_column(self) -> str:
        """SQL for a row's codec: a read-only view of a v1 file has no such column (all JSON)."""
        return "codec" if self.schema_version >= 2 else f"{CODEC_JSON} AS codec"

    # --- transactions ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @contextlib.contextmanager
    def write_txn(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            busy_retry(lambda: conn.execute("BEGIN IMMEDIATE"), exc, self.timeout)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            self._tail_cache = None  # it may describe rows this transaction inserted
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def read_txn(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several SELECTs."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("COMMIT")

    def insert(self, row: Row) -> None:
        """The hot path: one autocommit INSERT, one table page in the WAL."""
        try:
            self._cursor.execute(_INSERT, row)
        except sqlite3.OperationalError as exc:
            busy_retry(lambda: self._cursor.execute(_INSERT, row), exc, self.timeout)

    def insert_many(self, conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        conn.executemany(_INSERT, rows)

    def insert_group(self, rows: Sequence[Row]) -> None:
        """Commit up to ``GROUP_ROWS`` rows with one autocommit statement (all or none)."""
        sql, params = _INSERT_ROWS[len(rows)], [v for row in rows for v in row]
        try:
            self._cursor.execute(sql, params)
        except sqlite3.OperationalError as exc:
            busy_retry(lambda: self._cursor.execute(sql, params), exc, self.timeout)

    # --- accounting -----------------------------------------------------------------------------

    def accounting(self, conn: sqlite3.Connection) -> Acct:
        """Exact sizes; call inside a transaction. Scans only rows added since the last call."""
        row = conn.execute(
            "SELECT gen, acct_id, in_rows, in_bytes, out_rows, out_bytes, dead_rows, dead_bytes "
            "FROM accounting WHERE k = 0"
        ).fetchone()
        gen, acct_id = int(row[0]), int(row[1])
        cache = self._tail_cache
        if cache is not None and cache[0] == gen and cache[1] == acct_id:
            start, rows, nbytes = cache[2], cache[3], cache[4]
        else:
            start, rows, nbytes = acct_id, 0, 0
        n, b, mx = conn.execute(
            f"SELECT count(*), coalesce(sum(nbytes), 0), max(_id) FROM {Q} WHERE _id > ?", (start,)
        ).fetchone()
        rows += int(n)
        nbytes += int(b)
        upto = int(mx) if mx is not None else start
        self._tail_cache = (gen, acct_id, upto, rows, nbytes)
        in_rows, in_bytes, out_rows, out_bytes, dead_rows, dead_bytes = map(int, row[2:])
        return Acct(
            gen, acct_id, in_rows, in_bytes, out_rows, out_bytes, dead_rows, dead_bytes,
            rows, nbytes, upto,
        )  # fmt: skip

    def reconcile(self, conn: sqlite3.Connection) -> Acct:
        """Fold the tail into the accounting row (write transaction). Required before removals."""
        a = self.accounting(conn)
        if a.tail_max_id == a.acct_id:
            return a
        conn.execute(
            "UPDATE accounting SET gen = gen + 1, acct_id = ?, in_rows = in_rows + ?, "
            "in_bytes = in_bytes + ? WHERE k = 0",
            (a.tail_max_id, a.tail_rows, a.tail_bytes),
        )
        self._tail_cache = (a.gen + 1, a.tail_max_id, a.tail_max_id, 0, 0)
        return Acct(
            a.gen + 1, a.tail_max_id, a.in_rows + a.tail_rows, a.in_bytes + a.tail_bytes,
            a.out_rows, a.out_bytes, a.dead_rows, a.dead_bytes, 0, 0, a.tail_max_id,
        )  # fmt: skip

    def account_removed(
        self,
        conn: sqlite3.Connection,
        rows: int,
        nbytes: int,
        *,
        dead_rows: int = 0,
        dead_bytes: int = 0,
    ) -> None:
        """Record rows removed from the queue table and DEAD deltas, after ``reconcile``."""
        if not (rows or nbytes or dead_rows or dead_bytes):
            return
        mx = conn.execute(f"SELECT max(_id) FROM {Q}").fetchone()[0]
        conn.execute(
            "UPDATE accounting SET gen = gen + 1, out_rows = out_rows + ?, "
            "out_bytes = out_bytes + ?, "
            "dead_rows = dead_rows + ?, dead_bytes = dead_bytes + ?, acct_id = min(acct_id, ?) "
            "WHERE k = 0",
            (rows, nbytes, dead_rows, dead_bytes, int(mx or 0)),
        )
        self._tail_cache = None

    # --- counters, meta, events -----------------------------------------------------------------

    @staticmethod
    def add_counters(conn: sqlite3.Connection, deltas: dict[str, int]) -> None:
        items = [(k, v) for k, v in deltas.items() if v]
        if items:
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                items,
            )

    @staticmethod
    def add_drops(conn: sqlite3.Connection, deltas: dict[str, int], at: float) -> None:
        """``add_counters`` for ``drop.<reason>`` deltas, also keeping the last drop's time.

        The time is the ``last_drop_ms`` counter (a max, in unix milliseconds): one more row
        of the same small page, so ``status`` can say "dropping" for a recent window.
        """
        items = [(k, v) for k, v in deltas.items() if v]
        if not items:
            return
        items.append((LAST_DROP, int(at * 1000)))
        conn.executemany(_UPSERT_DROP, items)

    def count_drops_now(self, reason: str, n: int, at: float) -> None:
        """Count ``n`` drops in ONE autocommit statement (the hot path of a full spool).

        One statement touching one page, like an accepted append: refusing a record must not
        cost more than storing one (no transaction, no size query).
        """
        params = (f"drop.{reason}", n, LAST_DROP, int(at * 1000))
        try:
            self._cursor.execute(_UPSERT_DROPS_2, params)
        except sqlite3.OperationalError as exc:
            busy_retry(lambda: self._cursor.execute(_UPSERT_DROPS_2, params), exc, self.timeout)

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    @staticmethod
    def add_event(
        conn: sqlite3.Connection, at: float, kind: str, detail: dict[str, Any], keep: int = 100
    ) -> None:
        conn.execute(
            "INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)",
            (at, kind, json.dumps(detail, sort_keys=True)),
        )
        conn.execute("DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?", (keep,))

    # --- leases ---------------------------------------------------------------------------------

    @staticmethod
    def revert_expired(conn: sqlite3.Connection, now: float) -> int:
        """READY again (attempts + 1) for every lease whose ``lease_until <= now``."""
        return _revert_leases(conn, "lease_until <= ?", now)

    @staticmethod
    def revert_foreign(conn: sqlite3.Connection, owner_id: str) -> int:
        """READY again for every lease not held by ``owner_id`` (the new lock holder)."""
        reverted = _revert_leases(conn, "owner_id != ?", owner_id)
        # Safety net (one full scan, only at flusher start): LEASED rows without a lease row.
        reverted += conn.execute(
            f"UPDATE {Q} SET status = {READY}, owner = NULL, attempts = attempts + 1 "
            f"WHERE status = {LEASED} "
            "AND (owner IS NULL OR owner NOT IN (SELECT token FROM leases))"
        ).rowcount
        return reverted

    @staticmethod
    def first_ready(conn: sqlite3.Connection) -> tuple[int, str] | None:
        """(id, dest) of the oldest READY row: it picks the destination of the next lease."""
        first = conn.execute(
            f"SELECT _id, dest FROM {Q} WHERE status < {LEASED} ORDER BY _id LIMIT 1"
        ).fetchone()
        return None if first is None else (int(first[0]), str(first[1]))

    @staticmethod
    def select_ready(
        conn: sqlite3.Connection,
        dest: str,
        start: int,
        stop: int,
        *,
        limit: int,
        max_bytes: int,
        at_least_one: bool,
    ) -> tuple[list[tuple[int, int, float, int, int]], bool]:
        """``(rows, more)``: the oldest READY rows of ``dest`` with start <= id < stop.

        Each row is ``(_id, nbytes, enqueued_at, attempts, codec)``: only small columns are
        read (the lock holder never copies record data). Stops at
        ``limit`` rows or before the row that would pass ``max_bytes`` (``at_least_one``:
        the first row is taken even if it alone is larger). ``more`` is True only when the row
        count stopped the scan (the next call may find more rows within the window).
        """
        # LIMIT + 1: one row more than wanted tells whether the count stopped the scan. The
        # byte limit is applied on running sums (C loops: accumulate + bisect, no per-row code).
        rows = conn.execute(
            f"SELECT _id, nbytes, timestamp, attempts, codec FROM {Q} "
            f"WHERE _id >= ? AND _id < ? AND status < {LEASED} AND dest = ? ORDER BY _id "
            "LIMIT ?",
            (start, stop, dest, limit + 1),
        ).fetchall()
        if not rows:
            return [], False
        running = list(itertools.accumulate(map(operator.itemgetter(1), rows)))
        fit = bisect.bisect_right(running, max_bytes)
        if fit == 0 and at_least_one:
            fit = 1
        if fit > limit:
            return rows[:limit], True
        return rows[:fit], False

    @staticmethod
    def mark_leased(conn: sqlite3.Connection, token: str, dest: str, lo: int, hi: int) -> int:
        # Same predicate as the SELECT, same transaction: exactly the selected rows.
        return conn.execute(
            f"UPDATE {Q} SET status = {LEASED}, owner = ? "
            f"WHERE _id BETWEEN ? AND ? AND status < {LEASED} AND dest = ?",
            (token, lo, hi, dest),
        ).rowcount

    @staticmethod
    def extend_lease(conn: sqlite3.Connection, token: str, hi: int, nrows: int) -> None:
        """A later chunk of the same lease: widen its id range."""
        conn.execute(
            "UPDATE leases SET hi = ?, nrows = nrows + ? WHERE token = ?", (hi, nrows, token)
        )

    @staticmethod
    def read_leased_logs(conn: sqlite3.Connection, token: str, lo: int, hi: int) -> bytes:
        """The stored records ``token`` holds with lo <= id <= hi, concatenated in id order.

        One aggregate in C (``group_concat`` over the blobs, cast back to a blob), so a batch
        of thousands of records costs one Python object. Runs on the side connection after
        the lease committed: the rows are ours (only the holder moves them), so a WAL snapshot
        reads them without the write lock. The caller checks the length against the sizes.
        """
        row = conn.execute(
            "SELECT CAST(coalesce(group_concat(data, ''), '') AS BLOB) FROM "
            f"(SELECT data FROM {Q} WHERE _id BETWEEN ? AND ? AND status = {LEASED} "
            "AND owner = ? ORDER BY _id)",
            (lo, hi, token),
        ).fetchone()
        return bytes(row[0])

    @staticmethod
    def read_leased_rows(
        conn: sqlite3.Connection, token: str, lo: int, hi: int
    ) -> list[tuple[int, str | bytes, int]]:
        """``(_id, data, codec)`` of the rows ``token`` holds (batches with v1 rows)."""
        return conn.execute(
            f"SELECT _id, data, codec FROM {Q} "
            f"WHERE _id BETWEEN ? AND ? AND status = {LEASED} AND owner = ? ORDER BY _id",
            (lo, hi, token),
        ).fetchall()

    @staticmethod
    def insert_lease(
        conn: sqlite3.Connection,
        *,
        token: str,
        owner_id: str,
        dest: str,
        lo: int,
        hi: int,
        nrows: int,
        now: float,
        lease_until: float,
    ) -> None:
        conn.execute(
            "INSERT INTO leases "
            "(token, owner_id, pid, dest, lo, hi, nrows, leased_at, lease_until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (token, owner_id, os.getpid(), dest, lo, hi, nrows, now, lease_until),
        )

    @staticmethod
    def cleanup_leases(conn: sqlite3.Connection, token: str | None, owner_id: str) -> int:
        """Drop lease rows that no longer cover any LEASED row; returns how many."""
        pred, param = ("token = ?", token) if token is not None else ("owner_id = ?", owner_id)
        return conn.execute(
            f"DELETE FROM leases WHERE {pred} AND NOT EXISTS (SELECT 1 FROM {Q} "
            f"WHERE {Q}._id BETWEEN leases.lo AND leases.hi AND {Q}.owner = leases.token)",
            (param,),
        ).rowcount

    @staticmethod
    def leased_totals(conn: sqlite3.Connection) -> tuple[int, int, int]:
        """(active leases, leased rows, leased bytes)."""
        leases = int(conn.execute("SELECT count(*) FROM leases").fetchone()[0])
        if not leases:
            return 0, 0, 0
        n, b = conn.execute(
            f"SELECT count(*), coalesce(sum({Q}.nbytes), 0) FROM leases JOIN {Q} "
            f"ON {Q}._id BETWEEN leases.lo AND leases.hi AND {Q}.owner = leases.token"
        ).fetchone()
        return leases, int(n), int(b)

    # --- transitions by id ----------------------------------------------------------------------

    @staticmethod
    def owner_clause(token: str | None, owner_id: str) -> tuple[str, str]:
        """SQL predicate: leased by this token, or by any lease of this Spool instance."""
        if token is not None:
            return f"status = {LEASED} AND owner = ?", token
        return (
            f"status = {LEASED} AND owner IN (SELECT token FROM leases WHERE owner_id = ?)",
            owner_id,
        )

    @staticmethod
    def delete_range(conn: sqlite3.Connection, token: str, lo: int, hi: int) -> int:
        """Delete the rows ``token`` still holds with lo <= id <= hi; returns how many.

        The caller knows which rows those can be (and their sizes) from the lease itself, so
        this needs neither the id list (json_each) nor RETURNING (see ``Spool.ack``).
        """
        return conn.execute(
            f"DELETE FROM {Q} WHERE _id BETWEEN ? AND ? AND status = {LEASED} AND owner = ?",
            (lo, hi, token),
        ).rowcount

    @classmethod
    def held(cls, ids: Sequence[int], token: str | None, owner_id: str) -> Held:
        """The rows among ``ids`` still leased by ``token`` (None: by any lease of ``owner_id``).

        Built once per settle chunk and given to ``delete_leased`` / ``release_leased`` /
        ``move_to_dead``, which only add what they do to those rows.
        """
        pred, param = cls.owner_clause(token, owner_id)
        return Held(f"{_IDS} AND {pred}", (json.dumps(ids), param))

    @staticmethod
    def delete_leased(conn: sqlite3.Connection, held: Held) -> tuple[int, int]:
        return _removed(conn, f"DELETE FROM {Q} WHERE {held.where}", held.params)

    @staticmethod
    def release_leased(
        conn: sqlite3.Connection, held: Held, error: RowError, *, count_attempt: bool = True
    ) -> int:
        bump = "attempts + 1" if count_attempt else "attempts"  # one of two fixed fragments
        return conn.execute(
            f"UPDATE {Q} SET status = {READY}, owner = NULL, attempts = {bump}, "
            f"err_code = coalesce(?, err_code), err_message = coalesce(?, err_message), "
            f"err_request_id = coalesce(?, err_request_id) WHERE {held.where}",
            (*error, *held.params),
        ).rowcount

    @staticmethod
    def move_to_dead(
        conn: sqlite3.Connection, held: Held, error: RowError, *, attempts: int | None, now: float
    ) -> tuple[int, int]:
        conn.execute(
            "INSERT INTO dead_letters (orig_id, data, timestamp, dest, nbytes, attempts, err_code, "
            "err_message, err_request_id, dead_at, codec, log_time, level, logger) "
            "SELECT _id, data, timestamp, dest, nbytes, coalesce(?, attempts + 1), ?, ?, ?, ?, "
            "codec, log_time, level, logger "
            f"FROM {Q} "
            f"WHERE {held.where} ORDER BY _id",
            (attempts, *error, now, *held.params),
        )
        return _removed(conn, f"DELETE FROM {Q} WHERE {held.where}", held.params)

    @staticmethod
    def dead_filter(
        ids_json: str | None, error_code: str | None, dead_before: float | None
    ) -> tuple[str, list[Any]]:
        """``(where, params)`` of the dead letters a replay takes: each filter given narrows it."""
        filters = {_IDS: ids_json, "err_code = ?": error_code, "dead_at <= ?": dead_before}
        given = {clause: value for clause, value in filters.items() if value is not None}
        return " AND ".join(["1", *given]), list(given.values())

    def replay(
        self, conn: sqlite3.Connection, where: str, params: list[Any], now: float
    ) -> tuple[int, int]:
        """DEAD -> READY: re-enqueued at the tail (new ids, enqueued_at = now, attempts = 0)."""
        conn.execute(
            f"INSERT INTO {Q} (data, timestamp, status, dest, nbytes, attempts, codec, log_time, "
            "level, logger) "
            f"SELECT data, ?, {READY}, dest, nbytes, 0, codec, log_time, level, logger "
            "FROM dead_letters "
            f"WHERE {where} ORDER BY _id",
            (now, *params),
        )
        return _removed(conn, f"DELETE FROM dead_letters WHERE {where}", params)

    @staticmethod
    def evict_oldest(
        conn: sqlite3.Connection, need_rows: int, need_bytes: int
    ) -> tuple[int, int, int, int]:
        """Delete the oldest DEAD, then the oldest READY rows until both needs are met.

        Returns (queue rows, queue bytes, dead rows, dead bytes) removed. LEASED rows are never
        evicted: they are in flight and will be acked or released.
        """
        freed: list[int] = []
        for table, ready_only in (("dead_letters", False), (Q, True)):
            rows = nbytes = 0
            last = None
            if need_rows > 0 or need_bytes > 0:
                pred = f" WHERE status < {LEASED}" if ready_only else ""
                cur = conn.execute(f"SELECT _id, nbytes FROM {table}{pred} ORDER BY _id")
                try:
                    for _id, size in cur:
                        if need_rows <= 0 and need_bytes <= 0:
                            break
                        last, rows, nbytes = _id, rows + 1, nbytes + size
                        need_rows -= 1
                        need_bytes -= size
                finally:
                    cur.close()
            if last is not None:
                extra = f" AND status < {LEASED}" if ready_only else ""
                conn.execute(f"DELETE FROM {table} WHERE _id <= ?{extra}", (last,))
            freed += [rows, nbytes]
        dead_rows, dead_bytes, q_rows, q_bytes = freed
        return q_rows, q_bytes, dead_rows, dead_bytes

    @staticmethod
    def purge_queue(conn: sqlite3.Connection, status_pred: str) -> tuple[int, int]:
        return _removed(conn, f"DELETE FROM {Q} WHERE {status_pred}", ())


def _removed(conn: sqlite3.Connection, delete: str, params: Sequence[Any]) -> tuple[int, int]:
    """Run ``delete`` (a DELETE statement); (rows removed, their bytes) via RETURNING."""
    sizes = conn.execute(f"{delete} RETURNING nbytes", params).fetchall()
    return len(sizes), sum(int(s[0]) for s in sizes)


def _revert_range(conn: sqlite3.Connection, token: str, lo: int, hi: int) -> int:
    # attempts + 1: the holder may have died mid-send; a batch that kills its flusher every
    # time must eventually look poisonous to the retry policy instead of looping forever.
    return conn.execute(
        f"UPDATE {Q} SET status = {READY}, owner = NULL, attempts = attempts + 1 "
        "WHERE _id BETWEEN ? AND ? AND owner = ?",
        (lo, hi, token),
    ).rowcount


def _revert_leases(conn: sqlite3.Connection, where: str, param: object) -> int:
    """Revert the rows of every lease matching ``where`` (a fixed predicate) and drop them."""
    reverted = 0
    for token, lo, hi in conn.execute(
        f"SELECT token, lo, hi FROM leases WHERE {where}", (param,)
    ).fetchall():
        reverted += _revert_range(conn, token, lo, hi)
    conn.execute(f"DELETE FROM leases WHERE {where}", (param,))
    return reverted
