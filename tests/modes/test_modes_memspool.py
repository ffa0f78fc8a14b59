"""MemorySpool beyond the spool contract: what only an in-process queue has (fork).

Everything it shares with the durable spool (append, lease, settling, bounds, when_full,
counters, close) is tested once for both in ``tests/spool/test_spool_contract.py``.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

from modes_support import DEADLINE

from yai_spool.spool.destination import encode_dest
from yai_spool.spool.memory import MemorySpool

DEST_A = encode_dest("proj-a", "store-a")


def entry(i: int) -> dict[str, object]:
    return {"time": 1_700_000_000, "time_ns": 0, "contents": [["n", str(i)]]}


def numbers(batch: Any) -> list[int]:
    return [int(e["contents"][0][1]) for e in batch.entries]


def lease(spool: MemorySpool) -> Any:
    return spool.lease(100, 1 << 20, lease_seconds=60)


def _child_view(spool: MemorySpool, conn: multiprocessing.connection.Connection) -> None:
    spool.append(entry(99), dest=DEST_A)
    batch = lease(spool)
    conn.send(numbers(batch))  # only its own record: the parent's belong to the parent


def test_a_forked_child_starts_empty() -> None:
    spool = MemorySpool()
    spool.append(entry(1), dest=DEST_A)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child_view, args=(spool, child))
    proc.start()
    assert parent.poll(DEADLINE)
    assert parent.recv() == [99]
    proc.join(DEADLINE)
    assert numbers(lease(spool)) == [1]
