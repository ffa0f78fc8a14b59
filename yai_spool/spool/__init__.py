"""The durable spool: a bounded, multi-process SQLite queue of log entries (pure storage).

Owns one SQLite file per spool and everything stored in it: records, leases, dead letters, drop
and delivery counters, last success/error, events (quarantine, repaired modes). No network, no
``logging``: the handler appends, the flusher (a thread, or a daemon in another process) leases,
ships and acks on top of this API. The part of it the flushers use is ``SpoolBackend``
(``backend.py``: the contract, and where the in-memory ``MemorySpool`` legitimately differs).

Record states (``RecordState``)::

    append ──> READY ──lease──> LEASED ──ack──> (deleted: delivered)
                 ^                │ │
                 └──release───────┘ └──dead_letter──> DEAD ──replay_dead──> READY (at the tail)
                 └──lease expiry / new flusher lock───┘         purge: READY | LEASED | DEAD | all
    drop_oldest evicts DEAD first, then READY (oldest first); LEASED is never evicted.

Invariants (each step is a SQLite transaction, so a crash at any instruction leaves either the
state before or the state after it; ``lease``/``ack``/``release``/``dead_letter`` of more than
``SpoolConfig.max_txn_rows`` records are several such steps, each exact on its own, so that no
producer waits long for the write lock; a crash between two of them leaves the rest LEASED, to
be retried):

1. ``append``/``append_log`` returns only after its row is committed. One autocommit INSERT
   that touches one table page: no index, no trigger, no AUTOINCREMENT on the hot path. Rows
   are stored ready to send (schema v2, ``codec=1``): the bytes of the record's SLS ``Log``
   protobuf message plus the plain columns the CLI filters on (``log_time``, ``level``,
   ``logger``, ``nbytes``, ``dest``); rows of a v1 file (JSON, ``codec=0``) are converted when
   leased and decoded for display (``decode_stored``), never rewritten in place. Group commit:
   threads that arrive while another thread's commit is in flight are committed together by
   the next leader in ONE multi-row INSERT; each caller still returns only after the statement
   holding its own row committed (same durability). Rows too large or not encodable are
   refused before they join a group; a group that could cross a bound takes the exact path
   (``when_full`` decided row by row); a storage error fails, and counts, every row of the
   group (they shared the statement that failed).
2. A LEASED row carries its lease's random token; ``ack``/``release``/``dead_letter`` act only on
   the given ids that are still LEASED by that token (a ``Batch``) or by a lease of this ``Spool``
   instance (plain ids). A stale flusher therefore can never delete or move rows someone else
   leased. There is no global "pending" flag (python-logstash-async's data-loss bug).
3. Leases end by ack/release/dead_letter, by expiry (``lease_until <= now`` is reverted by the next
   ``lease()``), or when a flusher acquires the flusher lock (every lease not owned by it reverts:
   the lock holder is the only legitimate owner). Reverting adds one attempt, so a batch that
   kills its flusher every time still exhausts a retry budget. Guarantee: **at-least-once**;
   duplicates happen when a flusher dies or its lease expires after the server accepted a batch.
4. ``lease`` is FIFO per destination: the oldest READY row picks the destination; that
   destination's oldest READY rows are taken in id order (ids are strictly increasing among
   live rows), within a bounded scan window.
5. Sizes are exact (``accounting`` table + a primary-key range over rows added since the last
   reconcile); every drop is counted under one reason in the same transaction as the drop, or,
   when the disk cannot be written, kept in memory and persisted with the next successful write.
   Counters survive restarts and are readable from other processes (``open_readonly``).
6. Bounds (``max_records``/``max_bytes``, over READY + LEASED + DEAD) are checked against an exact
   snapshot refreshed every ``refresh_every`` appends per process, so with P processes appending
   at once the spool can exceed a bound by at most ~P x ``refresh_every`` records; evictions and
   drop decisions themselves are taken on exact numbers inside a write transaction.
7. One writer connection per process (per ``Spool``), guarded by a lock; ``BEGIN IMMEDIATE`` for
   multi-statement writes; ``busy_timeout`` bounds every wait for another process's lock. The
   write lock is held only to choose and mark rows (``_id``/``nbytes``) or to delete them: a
   lease reads the record data after COMMIT on a second (side) connection, which also runs the
   WAL checkpoints, and hands out the stored logs concatenated (``Batch.logs``, with
   ``Batch.log_sizes``): a LogGroup body is those bytes plus the group's header, no per-record
   decode or encode (``Batch.entries`` decodes them lazily, for tests and the CLI). The writer
   connection has ``busy_timeout=0`` and retries SQLITE_BUSY itself with short polls
   (``busy_retry``): SQLite's own busy handler sleeps 1, 2, 5, 10 ... ms, which alone put
   79 ms into the emit p99.9 next to a draining process. ``ack`` of a batch deletes by id
   range when the lease proves that exact, else by id list.
8. A child process never uses (or closes) its parent's connection: ``reopen_after_fork()`` (also
   triggered by a pid change) opens a new one; the inherited one is kept, never closed. Every
   live ``Spool`` holds its two locks across ``fork()`` (``os.register_at_fork``, bounded wait;
   ``Spool.GUARDS_FORK``), so no thread is inside SQLite when the child is created (a child
   forked mid-call would inherit SQLite's global mutexes locked and hang).
9. A corrupt file (header not a database, ``quick_check`` failure, SQLITE_CORRUPT at run time) is
   renamed to ``<name>.corrupt-<UTC timestamp>`` with its -wal/-shm, a ``quarantined`` event is
   written into the fresh spool (and returned in ``open_events``/``stats().events``), and a fresh
   spool is used: no crash loop, no silent stall. Another process's corrupt file is never moved
   twice (inode check under ``<spool>.open.lock``); processes still writing the old file follow
   the path at their next size refresh (records they appended meanwhile stay in the quarantined
   file, not shipped).
10. Files are 0600 (database, -wal, -shm, lock files, the ledger; looser ones are repaired and
    reported); the directory is created 0700; a directory writable by others without the sticky
    bit is refused.
11. A full ``drop_newest`` spool refuses a record with one statement (the drop counter), like
    an accepted append (the INSERT): the exact size is read again at most every 50 ms while it
    stays full, at once after this instance's own ack or purge (``Spool.refuse_if_full`` lets
    the handler skip mapping a record that would be refused).

Durability:

- ``synchronous=NORMAL`` (default, WAL): a committed append survives ``kill -9`` of any process
  (producer or flusher) and any application crash. After a power loss or OS crash the most
  recent commits (those not yet fsynced by a checkpoint) may be lost; the file stays consistent.
- ``synchronous=FULL``: the WAL is fsynced at every commit; a committed append also survives
  power loss / OS crash (on storage that honours fsync). Costs one fsync per append.
- Disk full / read-only filesystem / permission denied while appending raise a typed
  ``SpoolAppendStorageError`` (counted under ``disk_full``/``readonly``/``permission``/...);
  already committed records are never lost by such failures (SQLite rolls the failed
  transaction back).

WAL and checkpoints: every connection sets ``wal_autocheckpoint=0`` so no append pays for a
checkpoint in the common case. A housekeeper thread per write-mode ``Spool`` (``housekeeper.py``,
started by the first append or by taking the flusher lock, joined by ``close()``) runs a PASSIVE
checkpoint on the side connection whenever the WAL changed (every ``housekeeper.TICK``, sooner
when producers say it grew) and TRUNCATEs an idle WAL to 0 bytes, so records live only in the
``-wal`` file for a fraction of a second. Producers that write without pause keep any checkpoint
from catching up (the WAL then never restarts); the producer that sees the WAL past
``wal_max_bytes`` at a size refresh copies the last frames itself, under its lock, and the WAL
restarts at the next append. With less than 16 MiB free on the disk this happens past 128 KiB.

Losses SQLite would hide, found at the first open in a process: ``walcheck`` compares the WAL's
committed frames with what SQLite's recovery accepted (a ``wal_damaged`` event, the damaged WAL
copied to ``<spool>.wal-damaged-<timestamp>``), and the ledger's appended high-water mark
(``ledger.py``, outside SQLite) with what the file holds (``records_missing``).

Drops while the file cannot be written are kept in memory and in the process's slot of
``<spool>.ledger`` (a preallocated side file), so other processes' ``stats()`` (``yai-spool
status``) count them; ``SpoolStats.last_drop_at`` is the newest drop of any kind.

Built on persist-queue (``persistqueue.SQLiteAckQueue``, 1.0 <= version < 1.2):

- Relied on: its constructor plumbing (directory + ``db_file_name``), the table name
  ``ack_queue_<name>`` and its leading columns ``_id, data, timestamp, status`` with the
  ``AckStatus`` codes (ready=1, unack=2 is our LEASED), so its readers ``queue()``,
  ``ready_count()``, ``unack_count()`` and ``shrink_disk_usage()`` (VACUUM, ``Spool.vacuum``)
  work on a spool; ``tran_lock`` as the per-process write lock (set to ``Spool``'s lock).
- Replaced: the schema (extra columns; plain INTEGER PRIMARY KEY instead of AUTOINCREMENT, see
  ``schema.py``), connection setup (WAL, synchronous, no autocheckpoint, autocommit with explicit
  ``BEGIN IMMEDIATE``, read-only URI), pickle serialisation (stored ``Log`` bytes; JSON in
  v1 files; ``StoredSerializer`` lets its readers decode both), ``put`` (one
  statement, no per-process ``total``), per-record ``get/ack/nack/ack_failed`` (batch lease/ack
  with owner tokens; ``ack_failed`` rows move to a ``dead_letters`` table so the READY scan never
  skips them), and ``auto_resume``/``resume_unack_tasks`` (it reverts every lease at open,
  including a live flusher's) by lease expiry + flusher-lock recovery. Those stock methods raise
  ``NotImplementedError`` on ``SpoolQueue``.
"""

from yai_spool.spool.backend import SpoolBackend
from yai_spool.spool.core import Spool
from yai_spool.spool.exceptions import (
    SpoolAppendStorageError,
    SpoolClosedError,
    SpoolCorruptError,
    SpoolDropped,
    SpoolEncodeError,
    SpoolError,
    SpoolFull,
    SpoolPermissionError,
    SpoolReadOnlyError,
    SpoolRecordTooLarge,
    SpoolSchemaError,
    SpoolStorageError,
)
from yai_spool.spool.failure import Failure
from yai_spool.spool.files import FlusherLock
from yai_spool.spool.schema import MIGRATIONS, SCHEMA_VERSION
from yai_spool.spool.store import SpoolQueue
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
    Synchronous,
    WhenFull,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Batch",
    "CheckpointResult",
    "DeadLetter",
    "DropReason",
    "Failure",
    "FlusherLock",
    "LastError",
    "QueuedRecord",
    "RecordState",
    "Spool",
    "SpoolAppendStorageError",
    "SpoolBackend",
    "SpoolClosedError",
    "SpoolConfig",
    "SpoolCorruptError",
    "SpoolDropped",
    "SpoolEncodeError",
    "SpoolError",
    "SpoolEvent",
    "SpoolFull",
    "SpoolPermissionError",
    "SpoolQueue",
    "SpoolReadOnlyError",
    "SpoolRecordTooLarge",
    "SpoolSchemaError",
    "SpoolStats",
    "SpoolStorageError",
    "Synchronous",
    "WhenFull",
]
