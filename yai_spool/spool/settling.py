"""``SpoolSettling``: what happens to leased records after a send, and to dead letters.

Owns: ``ack`` / ``retry_later`` / ``give_up`` (only ids still leased by the given lease or
this instance: package docstring, invariant 2), the lease book that lets an ack delete by id
range, the delivery outcomes recorded without moving records (``record_delivery``,
``record_failure``), and the operator's transitions ``replay_dead`` and ``purge``. Their
keyword forms (``release``, ``dead_letter``, ``record_error``) come from ``failure.SettleCalls``.

Invariants: more than ``config.max_txn_rows`` ids are settled in several transactions, each
exact and each recording its own counters; the last one drops lease rows that cover nothing.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from yai_spool.spool.common import release_counts, settle_ids
from yai_spool.spool.failure import NO_FAILURE, Failure, SettleCalls, SettleTarget
from yai_spool.spool.opening import SpoolOpening
from yai_spool.spool.schema import (
    LEASED,
)
from yai_spool.spool.store import SpoolQueue
from yai_spool.spool.types import (
    Batch,
    RecordState,
)

__all__ = ["SpoolSettling"]

# Leases remembered per instance for range-settling (a flusher holds one or two at a time).
_BOOK_SIZE: Final = 8


class SpoolSettling(SpoolOpening, SettleCalls):
    """Settling leases and dead letters of a ``Spool`` (see the module docstring)."""

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
        ids, token = settle_ids(target)
        if not ids:
            return 0
        now = self._clock()
        plan = self._settle_plan(token, ids)

        def delete(store: SpoolQueue, conn: sqlite3.Connection, chunk: Any, first: bool) -> int:
            store.reconcile(conn)
            if plan is not None:
                n, nbytes = self._delete_runs(store, conn, token, chunk)
            else:
                n, nbytes = store.delete_leased(conn, store.held(chunk, token, self._owner_id))
            store.account_removed(conn, n, nbytes)
            if n:
                store.add_counters(conn, {"delivered": n})
                store.set_meta(
                    conn, "last_success", {"at": now, "request_id": request_id, "records": n}
                )
            return n

        chunks = plan if plan is not None else self._id_chunks(ids)
        return self._settle("ack", token, chunks, delete, frees_room=True)

    def _settle(
        self,
        op: str,
        token: str | None,
        chunks: Sequence[Any],
        step: Callable[[SpoolQueue, sqlite3.Connection, Any, bool], int],
        *,
        frees_room: bool = False,
    ) -> int:
        """Run ``step(store, conn, chunk, first)`` in one write transaction per chunk.

        The last transaction also drops the lease rows that cover nothing any more (and the
        book entry of a lease that is gone). ``frees_room``: records left the bounds, so a
        producer waiting for room (block) or refused a moment ago (drop_newest) checks again.
        Returns the records moved in all chunks.
        """
        done = 0
        for k, chunk in enumerate(chunks):
            with self._locked() as store:
                try:
                    with self._write() as conn:
                        n = step(store, conn, chunk, k == 0)
                        if k == len(chunks) - 1 and store.cleanup_leases(
                            conn, token, self._owner_id
                        ):
                            self._forget_lease(token)
                except sqlite3.Error as exc:
                    raise self._storage_error(op, exc) from exc
            done += n
            if n and frees_room:
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
        return store.delete_leased(conn, store.held(members, token, self._owner_id))

    def retry_later(
        self, target: SettleTarget, failure: Failure | None = None, *, count_attempt: bool = True
    ) -> int:
        """Retry later: back to READY with attempts + 1 and the error kept on each record.

        Only ids still leased by this owner move. A failure with a code is also recorded as
        the spool's last error (and a throttled event if ``failure.throttled``) in the same
        transaction. ``count_attempt=False`` leaves attempts unchanged (e.g. a batch given
        back unsent at shutdown). Returns the number released. At most
        ``config.max_txn_rows`` ids per transaction (see ``ack``).
        """
        ids, token = settle_ids(target)
        if not ids:
            return 0
        now = self._clock()
        failure = failure or NO_FAILURE

        def give_back(store: SpoolQueue, conn: sqlite3.Connection, chunk: Any, first: bool) -> int:
            held = store.held(chunk, token, self._owner_id)
            n = store.release_leased(conn, held, failure.row_error, count_attempt=count_attempt)
            failed = failure.failed and first  # one failed request gave them all back
            store.add_counters(conn, release_counts(n, failed=failed, throttled=failure.throttled))
            if failed:
                self._set_last_error(conn, store, failure, now)
            return n

        return self._settle("release", token, self._id_chunks(ids), give_back)

    def give_up(
        self, target: SettleTarget, failure: Failure, *, attempts: int | None = None
    ) -> int:
        """Give up: move these leased ids to DEAD with the error, ``dead_at`` and ``attempts``.

        ``attempts`` is the final attempt count to store (default: the record's attempts + 1).
        DEAD records still count against the bounds until replayed or purged. Returns the
        number moved. At most ``config.max_txn_rows`` ids per transaction (see ``ack``).
        """
        ids, token = settle_ids(target)
        if not ids:
            return 0
        now = self._clock()

        def bury(store: SpoolQueue, conn: sqlite3.Connection, chunk: Any, first: bool) -> int:
            store.reconcile(conn)
            held = store.held(chunk, token, self._owner_id)
            error = failure.row_error
            n, nbytes = store.move_to_dead(conn, held, error, attempts=attempts, now=now)
            store.account_removed(conn, n, nbytes, dead_rows=n, dead_bytes=nbytes)
            store.add_counters(conn, {"dead_lettered": n})
            if first:
                self._set_last_error(conn, store, failure, now)
            return n

        return self._settle("dead_letter", token, self._id_chunks(ids), bury)

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

    def record_failure(self, failure: Failure) -> None:
        """Record the last delivery error (and a throttled event) without moving records."""
        now = self._clock()
        with self._locked() as store:
            try:
                with self._write() as conn:
                    self._set_last_error(conn, store, failure, now)
                    store.add_counters(conn, {"throttled_requests": 1 if failure.throttled else 0})
            except sqlite3.Error as exc:
                raise self._storage_error("record_error", exc) from exc

    @staticmethod
    def _set_last_error(
        conn: sqlite3.Connection, store: SpoolQueue, failure: Failure, now: float
    ) -> None:
        """Keep ``failure`` as the spool's last error (``stats()`` reads it back)."""
        store.set_meta(conn, "last_error", dataclasses.asdict(failure.last_error(now)))
