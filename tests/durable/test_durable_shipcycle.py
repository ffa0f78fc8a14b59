"""ShipCycle's pure logic with a tiny fake sender (a real spool file underneath).

The sender fake decodes the real protobuf body the cycle built and answers like SLS would:
``InvalidParameter`` for a batch holding a poison record, scripted failures otherwise. What
is asserted is how the cycle settles every record: ack, release or dead-letter, exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Set
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from durable_support import FAST_RETRY, LOGSTORE, PROJECT

from yai_spool.shipping.flusher import FlusherConfig, FlusherStats, ShipCycle
from yai_spool.shipping.retry import RetryPolicy
from yai_spool.sls.encoding import decode_log_group
from yai_spool.sls.errors import Outcome, SLSError
from yai_spool.spool import Batch, Spool, SpoolEncodeError
from yai_spool.spool.destination import encode_dest

DEST = encode_dest(PROJECT, LOGSTORE, "topic", "source", [("k", "v")])


@dataclass
class FakeResult:
    request_id: str


@dataclass
class FakeSender:
    """Answers like SLS: poison batches get 400 InvalidParameter; ``script`` overrides calls."""

    script: dict[int, Exception] = field(default_factory=dict)  # call number -> error
    calls: list[list[int]] = field(default_factory=list)  # seqs per call
    delivered: list[int] = field(default_factory=list)

    def put_raw(self, project: str, logstore: str, raw: bytes) -> FakeResult:
        assert (project, logstore) == (PROJECT, LOGSTORE)
        group = decode_log_group(raw)
        assert (group.topic, group.source, group.tags) == ("topic", "source", (("k", "v"),))
        seqs = [int(dict(log.contents)["seq"]) for log in group.logs]
        self.calls.append(seqs)
        n = len(self.calls)
        error = self.script.get(n)
        if error is not None:
            raise error
        if any(dict(log.contents)["message"] == b"POISON" for log in group.logs):
            raise SLSError(400, "InvalidParameter", "poisoned", f"RID{n:021d}")
        self.delivered.extend(seqs)
        return FakeResult(f"OK{n:022d}")

    def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def fill(spool: Spool, n: int, poison: Set[int] = frozenset()) -> None:
    for seq in range(n):
        message = "POISON" if seq in poison else f"ok {seq}"
        spool.append(
            {
                "time": 1_700_000_000,
                "time_ns": seq,
                "contents": [["seq", str(seq)], ["message", message]],
            },
            dest=DEST,
        )


def lease_all(spool: Spool, n: int = 64) -> Batch:
    batch = spool.lease(n, 8 << 20, lease_seconds=60)
    assert batch is not None
    return batch


def cycle(spool: Spool, sender: FakeSender, **kwargs: object) -> ShipCycle:
    config = FlusherConfig(max_batch_records=64, retry=kwargs.pop("retry", FAST_RETRY))  # type: ignore[arg-type]
    return ShipCycle(spool, sender, config, FlusherStats(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "unit.spool") as s:
        yield s


def dead_seqs(spool: Spool) -> list[int]:
    return sorted(int(dict(d.entry["contents"])["seq"]) for d in spool.dead_letters(1000))


@pytest.mark.parametrize("poison", [set(), {37}, {0, 31, 63}], ids=["none", "one", "three"])
def test_bisection_dead_letters_exactly_the_poison(spool: Spool, poison: set[int]) -> None:
    fill(spool, 64, poison)
    sender = FakeSender()
    outcome = cycle(spool, sender).ship(lease_all(spool))

    assert outcome is Outcome.DELIVERED  # the link works even when records are poison
    assert dead_seqs(spool) == sorted(poison)
    assert sorted(sender.delivered) == sorted(set(range(64)) - poison)  # each exactly once
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (0, 0, len(poison))
    assert stats.delivered == 64 - len(poison)
    # Bisection, not one request per record: at most 2 requests per poison per level.
    assert len(sender.calls) <= 1 + 2 * len(poison) * 6
    if not poison:
        assert len(sender.calls) == 1
    for letter in spool.dead_letters(1000):
        assert letter.error_code == "InvalidParameter"
        assert letter.request_id is not None
        assert letter.request_id.startswith("RID")


def test_transient_failure_mid_bisection_releases_everything_untried(spool: Spool) -> None:
    fill(spool, 64, {5})
    first = lease_all(spool)
    # call 1: the 64 are rejected; call 2: the first half (32) is rejected; call 3: its first
    # quarter hits a 503. Nothing may stay leased, nothing may be dead-lettered or lost.
    sender = FakeSender(script={3: SLSError(503, "ServerBusy", "busy", "RID503")})
    outcome = cycle(spool, sender).ship(first)

    assert outcome is Outcome.RETRY
    assert [len(c) for c in sender.calls] == [64, 32, 16]
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (64, 0, 0)
    assert stats.delivered == 0
    again = lease_all(spool)
    assert again.ids == first.ids  # all released, none lost, same order
    assert all(a >= 1 for a in again.attempts)

    # Next round with a healthy link: the poison alone is dead, the rest arrives once.
    sender.script.clear()
    assert cycle(spool, sender).ship(again) is Outcome.DELIVERED
    assert dead_seqs(spool) == [5]
    assert sorted(sender.delivered) == [s for s in range(64) if s != 5]


def test_transient_failure_in_second_half_keeps_first_half_delivered(spool: Spool) -> None:
    fill(spool, 64, {40})
    # 64 rejected; first half (0..31) delivered; second half (32..63) gets a 503.
    sender = FakeSender(script={3: SLSError(503, "ServerBusy", "busy", "RID503")})
    assert cycle(spool, sender).ship(lease_all(spool)) is Outcome.RETRY
    assert sorted(sender.delivered) == list(range(32))
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (32, 0, 0)
    assert sorted(int(dict(e["contents"])["seq"]) for e in lease_all(spool).entries) == list(
        range(32, 64)
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (SLSError(403, "WriteQuotaExceed", "quota", "RIDQ"), Outcome.THROTTLED),
        (SLSError(429, "ShardWriteQuotaExceed", "quota", "RIDS"), Outcome.THROTTLED),
        (SLSError(401, "Unauthorized", "bad key", "RIDU"), Outcome.CREDENTIALS),
        (SLSError(404, "LogStoreNotExist", "typo", "RIDL"), Outcome.CREDENTIALS),
    ],
    ids=["quota", "shard-quota", "unauthorized", "no-logstore"],
)
def test_throttling_and_credentials_keep_the_data(
    spool: Spool, error: SLSError, expected: Outcome
) -> None:
    fill(spool, 64)
    sender = FakeSender(script={1: error})
    outcome = cycle(spool, sender).ship(lease_all(spool))

    assert outcome is expected
    assert len(sender.calls) == 1  # no bisection: the data is not at fault
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (64, 0, 0)
    assert stats.last_error is not None
    assert stats.last_error.code == error.error_code
    assert stats.last_error.request_id == error.request_id
    if expected is Outcome.THROTTLED:
        assert stats.throttled_requests == 1
    # The same records ship untouched once the condition clears.
    assert cycle(spool, FakeSender()).ship(lease_all(spool)) is Outcome.DELIVERED
    assert spool.stats().delivered == 64


@pytest.mark.parametrize(("age", "expired"), [(3601, True), (3599, False)], ids=["old", "young"])
def test_max_age_dead_letters_records_older_than_max_age_only(
    tmp_path: Path, age: float, expired: bool
) -> None:
    clock = Clock()
    with Spool(tmp_path / "age.spool", clock=clock) as spool:
        fill(spool, 10)
        clock.now += age
        sender = FakeSender()
        policy = RetryPolicy(base=0.01, cap=0.05, max_age=3600)
        outcome = cycle(spool, sender, retry=policy, wall_clock=clock).ship(lease_all(spool))

        assert outcome is Outcome.DELIVERED
        letters = spool.dead_letters(100)
        if expired:
            assert sender.calls == []  # expired records are never sent
            assert len(letters) == 10
            assert {d.error_code for d in letters} == {"MaxAgeExceeded"}
        else:
            assert sorted(sender.delivered) == list(range(10))
            assert letters == []
        assert spool.stats().ready_records == 0


def test_max_age_only_old_rows(tmp_path: Path) -> None:
    """A batch mixing expired and young rows dead-letters only the expired ones."""
    if not hasattr(Batch, "enqueued_at"):
        pytest.skip("needs per-row Batch.enqueued_at (requested in /work/plan/requests.md)")
    clock = Clock()
    with Spool(tmp_path / "mixed.spool", clock=clock) as spool:
        fill(spool, 5)
        clock.now += 3000
        for seq in range(5, 10):
            spool.append(
                {
                    "time": 1_700_000_000,
                    "time_ns": 0,
                    "contents": [["seq", str(seq)], ["message", "y"]],
                },
                dest=DEST,
            )
        clock.now += 700  # rows 0..4 are 3700 s old, rows 5..9 are 700 s old
        sender = FakeSender()
        policy = RetryPolicy(base=0.01, cap=0.05, max_age=3600)
        cycle(spool, sender, retry=policy, wall_clock=clock).ship(lease_all(spool))
        assert dead_seqs(spool) == [0, 1, 2, 3, 4]
        assert sorted(sender.delivered) == [5, 6, 7, 8, 9]


def test_unencodable_entry_is_dead_lettered_alone(spool: Spool) -> None:
    fill(spool, 8)
    bad = {"time": 2**40, "time_ns": 0, "contents": [["seq", "8"], ["message", "x"]]}
    # Today's spool refuses such an entry at append, counted as a drop ...
    with pytest.raises(SpoolEncodeError):
        spool.append(bad, dest=DEST)
    assert spool.stats().dropped == {"encode_error": 1}
    # ... but a v1 spool (JSON rows) may hold one: a row the encoder refuses (a time beyond
    # uint32) is poison by definition, parked alone when leased.
    store = spool._store
    assert store is not None
    with store.write_txn() as conn:
        conn.execute(
            "INSERT INTO ack_queue_spool (data, timestamp, status, dest, nbytes, codec) "
            "VALUES (?, 1.0, 1, ?, 10, 0)",
            (json.dumps(bad), DEST),
        )
    sender = FakeSender()
    assert cycle(spool, sender).ship(lease_all(spool)) is Outcome.DELIVERED
    assert dead_seqs(spool) == [8]
    assert sorted(sender.delivered) == list(range(8))
