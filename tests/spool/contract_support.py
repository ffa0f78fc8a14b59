"""The backends of the spool contract tests (``test_spool_contract.py``), configured alike.

``Backend`` opens a real SQLite ``Spool`` on a file in ``tmp_path`` or a ``MemorySpool``
with the same bounds and the same injected clock, and hands it out typed as
:class:`~yai_spool.spool.SpoolBackend`: the tests may only use what the contract promises.
The few white-box peeks a test needs (is a producer parked in ``block``?) live here, named.

The one translation between the two configurations: the durable spool's ``evict_slack`` is
set to 0, so ``drop_oldest`` frees exactly the room the new record needs, as the memory spool
does (the slack is a durable-only speed knob: fewer eviction transactions).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spool_support import FakeClock, entry, seq_of

from yai_spool.spool import Batch, Spool, SpoolBackend, SpoolConfig, SpoolError, WhenFull
from yai_spool.spool.memory import MemorySpool, MemorySpoolConfig
from yai_spool.spool.schema import encode_stored

#: The backends every contract test runs against (pytest ids).
KINDS = ("sqlite", "memory")

#: Bound of every poll: generous, reached only when something is broken.
DEADLINE = 30.0

#: A lease long enough never to expire by itself during a test (the fake clock moves only
#: when a test moves it).
LONG = 3600.0


def as_backend(spool: Spool | MemorySpool) -> SpoolBackend:
    """``spool`` seen through the contract; mypy checks both classes conform (see the test)."""
    return spool


@dataclass(frozen=True)
class Bounds:
    """The configuration both backends share (names of ``MemorySpoolConfig``)."""

    max_records: int = 10_000
    max_bytes: int = 16 * 1024 * 1024
    when_full: WhenFull | str = WhenFull.DROP_OLDEST
    block_timeout: float = 1.0
    max_record_bytes: int = 1024 * 1024


@dataclass
class Backend:
    """Opens spools of one kind in one test; closes every one of them at teardown."""

    kind: str
    directory: Path
    clock: FakeClock = field(default_factory=FakeClock)
    opened: list[Spool | MemorySpool] = field(default_factory=list)

    @property
    def durable(self) -> bool:
        return self.kind == "sqlite"

    @property
    def path(self) -> Path:
        """The durable spool's file (every durable spool of a test shares it)."""
        return self.directory / "contract.db"

    def open(self, clock: Callable[[], float] | None = None, **bounds: Any) -> SpoolBackend:
        """A spool of this kind with ``Bounds(**bounds)`` (``max_dead_letters``: memory only).

        Memory: a new, empty queue. Durable: a new handle on the test's one file, so a second
        ``open`` is a second owner of the same records (as another process would be).
        """
        return as_backend(self.open_concrete(clock, **bounds))

    def open_concrete(
        self, clock: Callable[[], float] | None = None, **bounds: Any
    ) -> Spool | MemorySpool:
        """Like :meth:`open`, typed as the class (for the per-backend difference tests)."""
        dead_letters = bounds.pop("max_dead_letters", 1000)
        shared = dataclasses.asdict(Bounds(**bounds))
        shared["when_full"] = WhenFull(shared["when_full"])
        tick = clock or self.clock
        spool: Spool | MemorySpool
        if self.durable:
            spool = Spool(self.path, SpoolConfig(**shared, evict_slack=0.0), clock=tick)
        else:
            config = MemorySpoolConfig(**shared, max_dead_letters=dead_letters)
            spool = MemorySpool(config, name="contract", clock=tick)
        self.opened.append(spool)
        return spool

    def close_all(self) -> None:
        for spool in self.opened:
            with suppress(SpoolError):
                spool.close()


def backend_for(kind: str, directory: Path) -> Iterator[Backend]:
    """The body of the backend fixtures: a ``Backend`` whose spools close at teardown."""
    made = Backend(kind, directory)
    try:
        yield made
    finally:
        made.close_all()


def size(e: dict[str, Any]) -> int:
    """What a record of ``e`` weighs in every bound: its stored log's length."""
    return len(encode_stored(e))


def fill(spool: SpoolBackend, n: int, *, dest: str = "d") -> None:
    """Append ``entry(0)`` .. ``entry(n - 1)`` to ``dest``."""
    for i in range(n):
        spool.append(entry(i), dest=dest)


def seqs(batch: Batch | None) -> list[int]:
    """The sequence numbers in a batch (``[]`` for None)."""
    return [] if batch is None else [seq_of(e) for e in batch.entries]


def lease(spool: SpoolBackend, n: int = 1000, nbytes: int = 1 << 24, ttl: float = LONG) -> Batch:
    """Lease a batch that must exist."""
    batch = spool.lease(n, nbytes, lease_seconds=ttl)
    assert batch is not None, "nothing was READY"
    return batch


def drain(spool: SpoolBackend) -> list[int]:
    """Lease and ack everything READY; the sequence numbers in lease order."""
    out: list[int] = []
    while (batch := spool.lease(1000, 1 << 24, lease_seconds=LONG)) is not None:
        out += seqs(batch)
        spool.ack(batch)
    return out


def parked_producers(spool: SpoolBackend) -> int:
    """Producers waiting for room in ``append`` (``block``): both backends keep ``_waiting``.

    White-box on purpose: the only way to know a producer is parked without sleeping.
    """
    return int(spool._waiting)  # type: ignore[attr-defined]


def wait_until(predicate: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll ``predicate`` until true or ``timeout``; returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)  # a poll interval, not a synchronisation point
    return True
