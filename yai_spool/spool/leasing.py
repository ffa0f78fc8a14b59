"""``SpoolLeasing``: ``lease()``, FIFO per destination, with the write lock held briefly.

Owns: choosing and marking a lease's rows (chunks of ``config.max_txn_rows`` that read only
``_id`` and ``nbytes``), reading their data after COMMIT on the side connection, converting
rows a v1 spool stored as JSON, and parking a row that decodes as nothing as a dead letter
(package docstring, invariants 4 and 7).
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Final

from yai_spool.spool.common import check_lease_args
from yai_spool.spool.exceptions import (
    SpoolClosedError,
    SpoolError,
)
from yai_spool.spool.schema import (
    CODEC_JSON,
    CODEC_LOG,
    decode_stored,
    encode_stored,
)
from yai_spool.spool.settling import SpoolSettling
from yai_spool.spool.store import SpoolQueue
from yai_spool.spool.types import (
    Batch,
)

__all__ = ["SpoolLeasing"]

# The lease scan looks at most max(_MIN_WINDOW, 16 * max_records) ids past the oldest READY row.
_MIN_WINDOW: Final = 65_536


class SpoolLeasing(SpoolSettling):
    """Leasing of a ``Spool`` (see the module docstring)."""

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
        check_lease_args(max_records, max_bytes, lease_seconds)
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
