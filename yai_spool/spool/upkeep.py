# ruff: noqa: S608 - SQL text only interpolates module constants (table name, status codes)
# and fixed fragments chosen here; every value is a bound parameter.
"""``SpoolUpkeep``: what the housekeeper thread does for a ``Spool``, and WAL checkpoints.

Owns *what* one housekeeping tick does (``housekeeper.py`` owns *when*): persist drops counted
in memory and publish the rest in the ledger, switch to the small-disk mode on a nearly full
disk, checkpoint a grown WAL and truncate an idle one, raise the ledger's appended mark; and
``checkpoint()`` itself, which runs on the side connection (never the producers' one).

Invariants: a tick never raises into the spool's users (the thread logs and carries on); it
takes ``_lock`` only to move pending drops, never while holding ``_ckpt_lock``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3

from yai_spool.spool.common import checkpoint_mode
from yai_spool.spool.exceptions import (
    SpoolClosedError,
    SpoolReadOnlyError,
)
from yai_spool.spool.housekeeper import Housekeeper
from yai_spool.spool.opening import SpoolOpening
from yai_spool.spool.schema import (
    QUEUE_TABLE,
)
from yai_spool.spool.state import _TIGHT_FREE, _TIGHT_REFRESH
from yai_spool.spool.types import (
    CheckpointResult,
)

__all__ = ["SpoolUpkeep"]


class SpoolUpkeep(SpoolOpening):
    """Housekeeping and checkpoints of a ``Spool`` (see the module docstring)."""

    def checkpoint(self, mode: str = "PASSIVE") -> CheckpointResult:
        """Run a WAL checkpoint on a dedicated connection (the flusher calls this, not producers).

        PASSIVE never waits for anybody; TRUNCATE (occasionally) also shrinks the WAL file to 0,
        waiting up to busy_timeout for readers/writers.
        """
        mode = checkpoint_mode(mode)
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
