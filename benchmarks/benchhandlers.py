"""The logging handlers the benchmarks measure ours against (not a benchmark itself).

Owns: the contestants more than one script builds: the handler that drops everything (logging's
own cost, a QueueListener's target), the raw-sqlite3 durable floor, and the official Rust
producer behind ``logging``. Each script keeps what is its own (which fields a producer row
sends, a lock for many threads).

Invariants: every handler does in ``emit`` exactly the work its row claims and nothing else (no
checks, no counters), so a row's cost is the design's, not this module's; set-up (connections,
pragmas, tables, producers) happens in ``__init__``, outside every timed region.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchlib import AK, PROJECT, SK

LOGS_TABLE = "CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY, data TEXT, created REAL)"
INSERT_LOG = "INSERT INTO logs (data, created) VALUES (?, ?)"


def spool_pragmas(synchronous: str = "NORMAL") -> tuple[str, ...]:
    """The spool's own pragmas (its store's ``configure``): WAL, no autocheckpoint."""
    return ("journal_mode=WAL", f"synchronous={synchronous}", "wal_autocheckpoint=0")


SPOOL_PRAGMAS = spool_pragmas()


class DropHandler(logging.Handler):
    """Accepts and drops every record: what ``logging`` itself costs, or a queue's far end."""

    def emit(self, record: logging.LogRecord) -> None:
        return


def floor_connection(
    path: Path,
    pragmas: Sequence[str] = SPOOL_PRAGMAS,
    table: str = LOGS_TABLE,
    *,
    check_same_thread: bool = False,
) -> sqlite3.Connection:
    """An autocommit connection to ``path`` with ``pragmas`` set and ``table`` created."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    conn.execute(table)
    return conn


class SqliteFloor(logging.Handler):
    """Raw sqlite3: one autocommit INSERT of ``self.format(record)`` per record.

    The floor of any design that commits every record before ``emit`` returns, with the
    spool's pragmas (``spool_pragmas``) unless told otherwise.
    """

    def __init__(self, path: Path, pragmas: Sequence[str] = SPOOL_PRAGMAS) -> None:
        super().__init__()
        self.conn = floor_connection(path, pragmas)
        self.cursor = self.conn.cursor()

    def emit(self, record: logging.LogRecord) -> None:
        self.cursor.execute(INSERT_LOG, (self.format(record), record.created))

    def close(self) -> None:
        self.conn.close()
        super().close()


class ProducerHandler(logging.Handler):
    """The official Rust producer (aliyun-log-producer, lz4) behind ``logging``.

    Subclasses say what one record becomes (``emit``, through ``self.writer``); ``config``
    adds ``ProducerConfig`` fields to the common ones.
    """

    def __init__(self, logstore: str, **config: Any) -> None:
        super().__init__()
        from aliyun_log_producer import Producer, ProducerConfig

        self.producer = Producer(
            ProducerConfig(
                endpoint="http://sls.example.test",
                access_key_id=AK,
                access_key_secret=SK,
                compression="lz4",
                **config,
            )
        )
        self.writer = self.producer.writer(PROJECT, logstore)

    def flush(self) -> None:
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()
        super().close()
