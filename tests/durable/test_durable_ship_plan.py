"""ShipCycle.plan (the sans-I/O cycle), its asyncio driver ship_async, and flusher odds and ends.

A real spool file underneath; the senders are tiny fakes that decode the real protobuf body.
What is asserted is how every record is settled (ack / release / dead-letter, exactly once),
that both drivers settle identically, and that the encoded body does not depend on how it
was produced (the stored logs of a leased batch vs encoding its entries).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_durable_shipcycle import FakeResult, FakeSender, cycle, dead_seqs, fill, lease_all

from yai_spool.shipping.flusher import (
    FlusherConfig,
    FlusherStats,
    SendRequest,
    ShipCycle,
    ThreadFlusher,
    ship_async,
)
from yai_spool.sls.encoding import decode_log_group, encode_entries
from yai_spool.sls.errors import Outcome, SLSError
from yai_spool.spool import Spool


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "plan.spool") as s:
        yield s


class AsyncFakeSender:
    """``FakeSender``'s answers, awaited (``AsyncPutLogsClient.put_raw``'s shape)."""

    def __init__(self, inner: FakeSender) -> None:
        self.inner = inner

    async def put_raw(self, project: str, logstore: str, raw: bytes) -> FakeResult:
        await asyncio.sleep(0)  # a real suspension point, as on the network
        return self.inner.put_raw(project, logstore, raw)


def test_plan_yields_requests_and_settles_with_what_it_is_sent(spool: Spool) -> None:
    fill(spool, 10)
    plan = cycle(spool, FakeSender()).plan(lease_all(spool))
    request = next(plan)
    assert isinstance(request, SendRequest)
    assert request.record_count == 10
    assert len(decode_log_group(request.raw).logs) == 10
    # The sender's exception goes in as a value: released, with the HTTP status kept.
    with pytest.raises(StopIteration) as done:
        plan.send(SLSError(500, "InternalServerError", "boom", "RID500"))
    assert done.value.value is Outcome.RETRY
    stats = spool.stats()
    assert (stats.ready_records, stats.leased_records) == (10, 0)
    assert stats.last_error is not None
    assert (stats.last_error.code, stats.last_error.status) == ("InternalServerError", 500)


def test_a_closed_plan_leaves_its_batch_leased(spool: Spool) -> None:
    fill(spool, 8)
    plan = cycle(spool, FakeSender()).plan(lease_all(spool))
    next(plan)
    plan.close()  # a cancelled driver: nothing settled
    assert spool.stats().leased_records == 8


def test_dead_letters_keep_the_http_status(spool: Spool) -> None:
    fill(spool, 4, {2})
    assert cycle(spool, FakeSender()).ship(lease_all(spool)) is Outcome.DELIVERED
    assert dead_seqs(spool) == [2]
    error = spool.stats().last_error
    assert error is not None
    assert (error.code, error.status) == ("InvalidParameter", 400)


@pytest.mark.parametrize("offload", [False, True], ids=["on-loop", "worker-thread"])
def test_ship_async_settles_like_ship(tmp_path: Path, offload: bool) -> None:
    poison = {3, 40, 41}
    outcomes = []
    for driver in ("sync", "async"):
        with Spool(tmp_path / f"{driver}.spool") as spool:
            fill(spool, 64, poison)
            sender = FakeSender()
            ship_cycle = cycle(spool, sender)
            batch = lease_all(spool)
            if driver == "sync":
                outcome = ship_cycle.ship(batch)
            else:
                outcome = asyncio.run(_ship_async(ship_cycle, batch, sender, offload=offload))
            stats = spool.stats()
            outcomes.append(
                (
                    outcome,
                    sender.calls,
                    sorted(sender.delivered),
                    dead_seqs(spool),
                    (stats.ready_records, stats.leased_records, stats.delivered),
                )
            )
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][3] == sorted(poison)


async def _ship_async(
    ship_cycle: ShipCycle, batch: object, sender: FakeSender, *, offload: bool
) -> Outcome:
    if not offload:
        return await ship_async(ship_cycle, batch, AsyncFakeSender(sender))  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        return await ship_async(
            ship_cycle,
            batch,  # type: ignore[arg-type]
            AsyncFakeSender(sender),
            run_sync=lambda fn: loop.run_in_executor(worker, fn),
        )


def test_ship_async_cancelled_leaves_the_batch_leased(spool: Spool) -> None:
    fill(spool, 16)

    class Hanging:
        def __init__(self) -> None:
            self.started = asyncio.Event()

        async def put_raw(self, project: str, logstore: str, raw: bytes) -> None:
            self.started.set()
            await asyncio.Event().wait()  # never answers

    async def main() -> None:
        sender = Hanging()
        task = asyncio.create_task(ship_async(cycle(spool, FakeSender()), lease_all(spool), sender))
        await sender.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert spool.stats().leased_records == 16


def test_topic_override(spool: Spool) -> None:
    fill(spool, 3)
    seen = []

    class Sender:
        def put_raw(self, project: str, logstore: str, raw: bytes) -> FakeResult:
            seen.append(decode_log_group(raw).topic)
            return FakeResult("RID")

    config = FlusherConfig(topic="override")
    assert ShipCycle(spool, Sender(), config).ship(lease_all(spool)) is Outcome.DELIVERED  # type: ignore[arg-type]
    fill(spool, 1)
    assert ShipCycle(spool, Sender(), FlusherConfig(topic="")).ship(lease_all(spool)) is (  # type: ignore[arg-type]
        Outcome.DELIVERED
    )
    assert seen == ["override", ""]  # DEST's own topic is "topic"


def test_body_is_the_stored_logs_byte_identical_to_encoding(spool: Spool) -> None:
    """The PutLogs body is the leased stored logs + trailer: what encoding the entries gives."""
    n = 1000
    fill(spool, n)
    batch = lease_all(spool, n)
    bodies = []

    class Sender:
        def put_raw(self, project: str, logstore: str, raw: bytes) -> FakeResult:
            bodies.append(raw)
            return FakeResult("RID")

    ship_cycle = ShipCycle(
        spool,
        Sender(),  # type: ignore[arg-type]
        FlusherConfig(max_batch_records=n),
        FlusherStats(),
    )
    assert ship_cycle.ship(batch) is Outcome.DELIVERED
    expected = encode_entries(batch.entries, "topic", "source", (("k", "v"),))
    assert bodies == [expected]
    assert bodies[0].startswith(batch.logs)  # no record was decoded or re-encoded


def test_memory_style_batches_with_entries_only(spool: Spool) -> None:
    """A batch holding live entries (MemorySpool's form) ships through the same cycle."""
    fill(spool, 5, {1})
    leased = lease_all(spool)
    from yai_spool.spool import Batch

    live = Batch(
        leased.token,
        leased.dest,
        leased.ids,
        leased.entries,
        leased.attempts,
        leased.nbytes,
        leased.oldest_enqueued_at,
        leased.lease_until,
        leased.enqueued_at,
    )
    sender = FakeSender()
    assert cycle(spool, sender).ship(live) is Outcome.DELIVERED
    assert sorted(sender.delivered) == [0, 2, 3, 4]
    assert dead_seqs(spool) == [1]


def test_thread_flusher_join(spool: Spool) -> None:
    flusher = ThreadFlusher(spool, FakeSender(), FlusherConfig(linger=0, poll_interval=0.05))
    assert flusher.join(0) is True  # never started
    flusher.start()
    fill(spool, 3)
    flusher.wake()
    assert flusher.flush(30)
    flusher.stop(5)
    assert flusher.join(30) is True
    assert not flusher.running
