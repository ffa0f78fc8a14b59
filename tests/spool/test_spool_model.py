"""Model-based test: random operation sequences against a plain in-memory model of the spool.

The model is deliberately naive (lists and dicts, no SQL). After every step the spool's counts,
bytes, contents (read through persist-queue's stock ``queue()`` reader), dead letters and drop
counters must equal the model's; every ``lease`` must return exactly the batch the model predicts
(FIFO per destination, count/bytes limits, expiry and recovery with attempts + 1).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)
from spool_support import FakeClock, crash

from yai_spool.spool import Batch, Spool, SpoolConfig, SpoolFull, SpoolRecordTooLarge, WhenFull
from yai_spool.spool.schema import encode_stored

DESTS = ("a", "b", "c")
ERRORS = ("E1", "E2")


@dataclass
class Row:
    seq: int
    dest: str
    nbytes: int
    pos: int  # queue order: the spool's ids increase in this order
    attempts: int = 0
    token: str | None = None  # lease token while LEASED
    owner: int | None = None  # Spool instance number that leased it
    until: float = 0.0


def payload(seq: int, pad: int) -> dict:
    return {"time": 1, "contents": [["seq", str(seq)], ["pad", "y" * pad]]}


def seq_of(e: dict[str, Any]) -> int:
    return int(dict(e["contents"])["seq"])


class SpoolModel(RuleBasedStateMachine):
    batches = Bundle("batches")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="spool-model-"))
        self.path = self.dir / "spool.db"
        self.clock = FakeClock()
        self.rows: dict[int, Row] = {}  # READY and LEASED
        self.dead: list[tuple[Row, str]] = []  # in dead-letter order, with error code
        self.next_seq = 0
        self.next_pos = 0
        self.instance = 0
        self.drops: dict[str, int] = {}
        self.appended = 0
        self.delivered = 0
        self.spool: Spool | None = None

    @initialize(
        max_records=st.integers(3, 30),
        max_bytes=st.sampled_from([600, 2000, 100_000]),
        when_full=st.sampled_from([WhenFull.DROP_OLDEST, WhenFull.DROP_NEWEST]),
        max_txn_rows=st.sampled_from([1, 2, 3, 512]),
    )
    def open_spool(
        self, max_records: int, max_bytes: int, when_full: WhenFull, max_txn_rows: int
    ) -> None:
        # evict_slack=0: the model evicts exactly what is needed; refresh_every=1 keeps the
        # estimate exact (the overshoot bound is tested separately).
        self.config = SpoolConfig(
            max_records=max_records,
            max_bytes=max_bytes,
            when_full=when_full,
            evict_slack=0.0,
            refresh_every=1,
            max_record_bytes=max_bytes,
            # Small values split leases and settles into several transactions.
            max_txn_rows=max_txn_rows,
        )
        self.spool = Spool(self.path, self.config, clock=self.clock)

    def teardown(self) -> None:
        if self.spool is not None:
            self.spool.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- model helpers ----------------------------------------------------------------------

    def ready(self) -> list[Row]:
        return sorted((r for r in self.rows.values() if r.token is None), key=lambda r: r.pos)

    def totals(self) -> tuple[int, int]:
        rows = len(self.rows) + len(self.dead)
        nbytes = sum(r.nbytes for r in self.rows.values()) + sum(r.nbytes for r, _ in self.dead)
        return rows, nbytes

    def drop(self, reason: str, n: int = 1) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + n

    def model_append(self, seq: int, dest: str, nbytes: int) -> bool:
        cfg = self.config
        if nbytes > cfg.max_bytes:
            self.drop("too_large")
            return False
        rows, total = self.totals()
        if rows + 1 > cfg.max_records or total + nbytes > cfg.max_bytes:
            if cfg.when_full is WhenFull.DROP_OLDEST:
                need_rows, need_bytes = rows + 1 - cfg.max_records, total + nbytes - cfg.max_bytes
                evicted = 0
                while (need_rows > 0 or need_bytes > 0) and self.dead:
                    row, _ = self.dead.pop(0)
                    need_rows, need_bytes, evicted = (
                        need_rows - 1,
                        need_bytes - row.nbytes,
                        evicted + 1,
                    )
                for row in self.ready():
                    if need_rows <= 0 and need_bytes <= 0:
                        break
                    del self.rows[row.seq]
                    need_rows, need_bytes, evicted = (
                        need_rows - 1,
                        need_bytes - row.nbytes,
                        evicted + 1,
                    )
                if evicted:
                    self.drop("drop_oldest", evicted)
                rows, total = self.totals()
            if rows + 1 > cfg.max_records or total + nbytes > cfg.max_bytes:
                self.drop("drop_newest")
                return False
        self.rows[seq] = Row(seq, dest, nbytes, self.next_pos)
        self.next_pos += 1
        self.appended += 1
        return True

    def leased_by(self, token: str | None, owner: int | None, seqs: set[int]) -> list[Row]:
        return [
            r
            for r in self.rows.values()
            if r.seq in seqs
            and r.token is not None
            and (r.token == token if token else r.owner == owner)
        ]

    # --- rules ------------------------------------------------------------------------------

    @rule(dest=st.sampled_from(DESTS), pad=st.integers(0, 700))
    def append(self, dest: str, pad: int) -> None:
        assert self.spool is not None
        seq = self.next_seq
        self.next_seq += 1
        entry = payload(seq, pad)
        nbytes = len(encode_stored(entry))
        expect_stored = self.model_append(seq, dest, nbytes)
        reason = None
        try:
            self.spool.append(entry, dest=dest)
        except (SpoolFull, SpoolRecordTooLarge) as exc:
            reason = exc.reason
        assert (reason is None) == expect_stored
        assert reason in (None, "drop_newest", "too_large")

    @rule(
        target=batches,
        max_records=st.integers(1, 8),
        max_bytes=st.sampled_from([1, 300, 1000, 100_000]),
        ttl=st.sampled_from([5.0, 50.0]),
    )
    def lease(self, max_records: int, max_bytes: int, ttl: float) -> tuple[Batch, int] | None:
        assert self.spool is not None
        now = self.clock.now
        for row in self.rows.values():  # expiry happens inside lease()
            if row.token is not None and row.until <= now:
                row.token, row.owner, row.attempts = None, None, row.attempts + 1
        ready = self.ready()
        expected: list[Row] = []
        if ready:
            dest, total = ready[0].dest, 0
            for row in ready:
                if row.dest != dest:
                    continue
                if expected and (len(expected) >= max_records or total + row.nbytes > max_bytes):
                    break
                expected.append(row)
                total += row.nbytes
        batch = self.spool.lease(max_records, max_bytes, lease_seconds=ttl)
        if not expected:
            assert batch is None
            return None
        assert batch is not None
        assert [seq_of(e) for e in batch.entries] == [r.seq for r in expected]
        assert batch.dest == expected[0].dest
        assert list(batch.attempts) == [r.attempts for r in expected]
        assert batch.nbytes == sum(r.nbytes for r in expected)
        assert batch.sizes == tuple(r.nbytes for r in expected)
        assert batch.log_sizes == batch.sizes
        assert len(batch.logs) == sum(batch.sizes)
        for row in expected:
            row.token, row.owner, row.until = batch.token, self.instance, now + ttl
        return batch, self.instance

    def _live_batch(self, item: tuple[Batch, int] | None) -> Batch | None:
        # Batches of a crashed instance died with their process.
        if item is None or item[1] != self.instance:
            return None
        return item[0]

    @rule(item=consumes(batches), by_ids=st.booleans())
    def ack(self, item: tuple[Batch, int] | None, by_ids: bool) -> None:
        batch = self._live_batch(item)
        if batch is None:
            return
        seqs = {seq_of(e) for e in batch.entries}
        owned = self.leased_by(None if by_ids else batch.token, self.instance, seqs)
        assert self.spool is not None
        n = self.spool.ack(list(batch.ids) if by_ids else batch)
        assert n == len(owned)
        for row in owned:
            del self.rows[row.seq]
        self.delivered += n

    @rule(item=batches)
    def release(self, item: tuple[Batch, int] | None) -> None:
        batch = self._live_batch(item)
        if batch is None:
            return
        owned = self.leased_by(batch.token, None, {seq_of(e) for e in batch.entries})
        assert self.spool is not None
        assert self.spool.release(batch, error_code="Retry") == len(owned)
        for row in owned:
            row.token, row.owner, row.attempts = None, None, row.attempts + 1

    @rule(item=consumes(batches), code=st.sampled_from(ERRORS))
    def dead_letter(self, item: tuple[Batch, int] | None, code: str) -> None:
        batch = self._live_batch(item)
        if batch is None:
            return
        owned = sorted(
            self.leased_by(batch.token, None, {seq_of(e) for e in batch.entries}),
            key=lambda r: r.pos,
        )
        assert self.spool is not None
        assert self.spool.dead_letter(batch, error_code=code, message="m", request_id=None) == len(
            owned
        )
        for row in owned:
            del self.rows[row.seq]
            row.attempts += 1
            row.token = None
            self.dead.append((row, code))

    @rule(
        item=batches,
        positions=st.lists(st.integers(0, 7), unique=True),
        op=st.sampled_from(["ack", "release", "dead_letter"]),
    )
    def settle_part(self, item: tuple[Batch, int] | None, positions: list[int], op: str) -> None:
        """Settle a part of a batch (a bisection half, or any subset) by its lease token."""
        batch = self._live_batch(item)
        if batch is None:
            return
        part = batch.select(p for p in positions if p < len(batch))
        seqs = {seq_of(e) for e in part.entries}
        assert part.token == batch.token
        assert part.nbytes == sum(part.sizes or ())
        owned = sorted(self.leased_by(batch.token, None, seqs), key=lambda r: r.pos)
        assert self.spool is not None
        if op == "ack":
            assert self.spool.ack(part) == len(owned)
            for row in owned:
                del self.rows[row.seq]
            self.delivered += len(owned)
        elif op == "release":
            assert self.spool.release(part, error_code="Retry") == len(owned)
            for row in owned:
                row.token, row.owner, row.attempts = None, None, row.attempts + 1
        else:
            moved = self.spool.dead_letter(part, error_code="E1", message="m", request_id=None)
            assert moved == len(owned)
            for row in owned:
                del self.rows[row.seq]
                row.attempts += 1
                row.token = None
                self.dead.append((row, "E1"))

    @rule(code=st.sampled_from((None, *ERRORS)))
    def replay(self, code: str | None) -> None:
        assert self.spool is not None
        moving = [(r, c) for r, c in self.dead if code is None or c == code]
        assert self.spool.replay_dead(error_code=code) == len(moving)
        self.dead = [(r, c) for r, c in self.dead if not (code is None or c == code)]
        for row, _ in moving:
            row.attempts, row.pos = 0, self.next_pos
            self.next_pos += 1
            self.rows[row.seq] = row

    @rule(seconds=st.sampled_from([1.0, 10.0, 60.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def crash_and_reopen(self) -> None:
        assert self.spool is not None
        crash(self.spool)
        self.instance += 1
        self.spool = Spool(self.path, self.config, clock=self.clock)

    @rule()
    def become_flusher(self) -> None:
        assert self.spool is not None
        assert self.spool.acquire_flusher()
        for row in self.rows.values():
            if row.token is not None and row.owner != self.instance:
                row.token, row.owner, row.attempts = None, None, row.attempts + 1

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def spool_matches_model(self) -> None:
        if self.spool is None:
            return
        stats = self.spool.stats()
        leased = [r for r in self.rows.values() if r.token is not None]
        ready = [r for r in self.rows.values() if r.token is None]
        assert stats.ready_records == len(ready)
        assert stats.ready_bytes == sum(r.nbytes for r in ready)
        assert stats.leased_records == len(leased)
        assert stats.leased_bytes == sum(r.nbytes for r in leased)
        assert stats.dead_records == len(self.dead)
        assert stats.dead_bytes == sum(r.nbytes for r, _ in self.dead)
        assert stats.total_records <= self.config.max_records
        assert stats.total_bytes <= self.config.max_bytes
        assert stats.appended == self.appended
        assert stats.delivered == self.delivered
        assert dict(stats.dropped) == self.drops
        # Contents, through persist-queue's own reader: every row, in id (= model) order.
        store = self.spool._store
        assert store is not None
        rows = store.queue()
        model_rows = sorted(self.rows.values(), key=lambda r: r.pos)
        assert [seq_of(r["data"]) for r in rows] == [r.seq for r in model_rows]
        assert [r["status"] == 2 for r in rows] == [r.token is not None for r in model_rows]
        dead = self.spool.dead_letters(limit=10_000)
        assert [(seq_of(d.entry), d.attempts, d.error_code) for d in dead] == [
            (r.seq, r.attempts, c) for r, c in self.dead
        ]


SpoolModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("SPOOL_MODEL_EXAMPLES", "100")),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_spool_model = SpoolModel.TestCase
