"""SQLite storage of what the emulator received: accepted batches and request summaries.

Owns: the emulator's database schema, the write path (one transaction per request) and
the read path (``logs``, ``count``, ``requests``, ``destinations``).

Invariants:
- One ``batches`` row per accepted PutLogs request, holding the *decompressed* LogGroup
  bytes exactly as received, its log count and request id. Logs are decoded only on read
  (``decode_log_group``), so the write path costs one INSERT of one BLOB and the stored
  bytes are the ground truth for byte-exact round-trip tests.
- One ``requests`` row per request the emulator answered, dropped or held (including
  rejected and fault-injected ones), when ``record_requests`` is on. Secrets are never
  stored: the Authorization header and the STS token are not kept, only the auth version
  and the access key id.
- One connection, guarded by a lock, serves all threads (the emulator is a test bed; the
  lock is simpler than a pool and fast enough: a write is one short transaction). File
  databases use WAL so ``yai-spool emulator dump`` can read while a server is writing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from yai_spool.sls.encoding import decode_log_group
from yai_spool.sls.model import LogGroup

__all__ = ["EmulatorStore", "RequestSummary", "StoredLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id          INTEGER PRIMARY KEY,
    request_id  TEXT    NOT NULL,
    project     TEXT    NOT NULL,
    logstore    TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    log_count   INTEGER NOT NULL,
    raw         BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_destination ON batches (project, logstore, id);
CREATE TABLE IF NOT EXISTS requests (
    id            INTEGER PRIMARY KEY,
    request_id    TEXT    NOT NULL,
    received_at   REAL    NOT NULL,
    method        TEXT    NOT NULL,
    path          TEXT    NOT NULL,
    query         TEXT    NOT NULL,
    project       TEXT    NOT NULL,
    logstore      TEXT    NOT NULL,
    status        INTEGER,
    error_code    TEXT,
    outcome       TEXT    NOT NULL,
    compress_type TEXT,
    user_agent    TEXT,
    auth_version  TEXT,
    access_key_id TEXT,
    body_bytes    INTEGER NOT NULL,
    raw_size      INTEGER,
    log_count     INTEGER NOT NULL,
    peer          TEXT    NOT NULL,
    headers       TEXT    NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredLog:
    """One accepted log, as decoded from the stored LogGroup bytes.

    ``contents`` values are ``bytes`` exactly as received (non-UTF-8 survives); keys are str.
    ``topic``, ``source`` and ``tags`` are the group-level fields of the request it came in.
    """

    time: int
    time_ns: int | None
    contents: tuple[tuple[str, bytes], ...]
    topic: str
    source: str
    tags: tuple[tuple[str, str], ...]
    request_id: str
    project: str = ""
    logstore: str = ""

    def get(self, key: str) -> bytes | None:
        """The first value stored under ``key``, or None."""
        for k, v in self.contents:
            if k == key:
                return v
        return None

    def text(self, key: str) -> str | None:
        """The first value under ``key`` decoded as UTF-8 (replacement chars if invalid)."""
        value = self.get(key)
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def fields(self) -> dict[str, bytes]:
        """Contents as a dict (the last duplicate key wins)."""
        return dict(self.contents)

    @classmethod
    def from_group(
        cls, group: LogGroup, request_id: str, project: str, logstore: str
    ) -> Iterator[StoredLog]:
        """The logs of one decoded request body, in order, each with the group's fields."""
        for log in group.logs:
            yield cls(
                time=log.time,
                time_ns=log.time_ns,
                contents=tuple((k, _as_bytes(v)) for k, v in log.contents),
                topic=group.topic,
                source=group.source,
                tags=group.tags,
                request_id=request_id,
                project=project,
                logstore=logstore,
            )


@dataclass(frozen=True, slots=True)
class RequestSummary:
    """What the emulator saw and answered for one request (no secrets).

    ``outcome`` is ``accepted``, ``rejected`` (the request failed a protocol check),
    ``fault`` (an injected error status), ``poisoned``, ``dropped`` (connection closed
    without an answer) or ``abandoned`` (a held request whose client went away).
    ``status``/``error_code`` are None when no response was sent. ``peer`` is the client's
    ``ip:port``: equal peers mean one reused TCP connection.
    """

    request_id: str
    received_at: float
    method: str
    path: str
    query: str
    project: str
    logstore: str
    status: int | None
    error_code: str | None
    outcome: str
    compress_type: str | None
    user_agent: str | None
    auth_version: str | None
    access_key_id: str | None
    body_bytes: int
    raw_size: int | None
    log_count: int
    peer: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)


class EmulatorStore:
    """The emulator's SQLite database; ``path=None`` keeps it in memory."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = None if path is None else str(path)
        if self.path is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        elif read_only:
            if not Path(self.path).exists():
                raise FileNotFoundError(f"no emulator database at {self.path}")
            uri = Path(self.path).resolve().as_uri() + "?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            # WAL lets the CLI read while a server writes; NORMAL skips the fsync per commit
            # (an emulator need not survive power loss, only process exit).
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        if not read_only:
            conn.executescript(_SCHEMA)

    # -- write path --------------------------------------------------------------------

    def record(
        self, summary: RequestSummary, batch: bytes | None, *, keep_summary: bool = True
    ) -> bool:
        """Store one request in one transaction: the raw LogGroup if it was accepted
        (``batch``), and its summary row if ``keep_summary``.

        Returns False if the store is already closed (a straggling request at shutdown).
        """
        with self._lock:
            conn = self._conn
            if conn is None:
                return False
            conn.execute("BEGIN")
            try:
                if batch is not None:
                    conn.execute(
                        "INSERT INTO batches (request_id, project, logstore, received_at, "
                        "log_count, raw) VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            summary.request_id,
                            summary.project,
                            summary.logstore,
                            summary.received_at,
                            summary.log_count,
                            batch,
                        ),
                    )
                if keep_summary:
                    conn.execute(
                        "INSERT INTO requests (request_id, received_at, method, path, query, "
                        "project, logstore, status, error_code, outcome, compress_type, "
                        "user_agent, auth_version, access_key_id, body_bytes, raw_size, "
                        "log_count, peer, headers) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (
                            summary.request_id,
                            summary.received_at,
                            summary.method,
                            summary.path,
                            summary.query,
                            summary.project,
                            summary.logstore,
                            summary.status,
                            summary.error_code,
                            summary.outcome,
                            summary.compress_type,
                            summary.user_agent,
                            summary.auth_version,
                            summary.access_key_id,
                            summary.body_bytes,
                            summary.raw_size,
                            summary.log_count,
                            summary.peer,
                            json.dumps(summary.headers, sort_keys=True),
                        ),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return True

    def clear(self) -> None:
        """Forget every stored batch and request summary."""
        with self._cursor() as conn:
            conn.execute("DELETE FROM batches")
            conn.execute("DELETE FROM requests")

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    @property
    def closed(self) -> bool:
        return self._conn is None

    # -- read path ---------------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._conn is None:
                raise RuntimeError("emulator store is closed")
            yield self._conn

    def raw_batches(self, project: str, logstore: str) -> list[tuple[str, bytes]]:
        """(request_id, decompressed LogGroup bytes) of each accepted request, in order."""
        with self._cursor() as conn:
            rows = conn.execute(
                "SELECT request_id, raw FROM batches WHERE project = ? AND logstore = ? "
                "ORDER BY id",
                (project, logstore),
            ).fetchall()
        return [(rid, bytes(raw)) for rid, raw in rows]

    def logs(self, project: str, logstore: str) -> list[StoredLog]:
        """Every accepted log for one destination, in arrival order."""
        out: list[StoredLog] = []
        for request_id, raw in self.raw_batches(project, logstore):
            out.extend(StoredLog.from_group(decode_log_group(raw), request_id, project, logstore))
        return out

    def count(self, project: str, logstore: str) -> int:
        """Number of accepted logs for one destination (no decoding)."""
        with self._cursor() as conn:
            (total,) = conn.execute(
                "SELECT COALESCE(SUM(log_count), 0) FROM batches "
                "WHERE project = ? AND logstore = ?",
                (project, logstore),
            ).fetchone()
        return int(total)

    def destinations(self) -> list[tuple[str, str, int, int]]:
        """(project, logstore, accepted requests, accepted logs) per destination."""
        with self._cursor() as conn:
            rows = conn.execute(
                "SELECT project, logstore, COUNT(*), SUM(log_count) FROM batches "
                "GROUP BY project, logstore ORDER BY project, logstore"
            ).fetchall()
        return [(p, ls, int(n), int(c)) for p, ls, n, c in rows]

    def requests(
        self, project: str | None = None, logstore: str | None = None
    ) -> list[RequestSummary]:
        """Request summaries in arrival order, optionally for one project/logstore."""
        sql = (
            "SELECT request_id, received_at, method, path, query, project, logstore, status, "
            "error_code, outcome, compress_type, user_agent, auth_version, access_key_id, "
            "body_bytes, raw_size, log_count, peer, headers FROM requests"
        )
        wanted = {c: v for c, v in (("project", project), ("logstore", logstore)) if v is not None}
        if wanted:
            sql += " WHERE " + " AND ".join(f"{column} = ?" for column in wanted)
        sql += " ORDER BY id"
        with self._cursor() as conn:
            rows = conn.execute(sql, list(wanted.values())).fetchall()
        # The columns are the fields in order; headers, the last, is stored as JSON. (mypy cannot
        # see that a row has exactly the fields before headers.)
        return [
            RequestSummary(*row[:-1], headers=json.loads(row[-1]))  # type: ignore[misc]
            for row in rows
        ]


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")
