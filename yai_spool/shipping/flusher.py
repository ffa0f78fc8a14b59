"""The flusher: leases batches from a spool, ships them with PutLogs, acks only on 200.

The public face of the shipping layer's delivery code, kept at the path every layer and
release 1 imported (``yai_spool.flusher``). It owns no code: each name lives in the module
of its one idea, and this module re-exports them unchanged.

- :mod:`yai_spool.shipping.cycle`: ``ShipCycle``, the sans-I/O plan of one leased batch
  (requests, bisection, ack / release / dead-letter), its ``Sender`` / ``AsyncSender``
  protocols, ``SendRequest`` and the plain drivers ``ShipCycle.ship`` and ``ship_async``.
- :mod:`yai_spool.shipping.thread`: ``ThreadFlusher``, the loop on a background thread
  (the in-process flusher and the daemon's unit), and its shutdown bound ``ABANDON_GRACE``.
- :mod:`yai_spool.shipping.config`: ``FlusherConfig`` and ``FlusherStats``.
- :mod:`yai_spool.shipping.marks`: ``in_flusher_thread`` / ``mark_flusher_thread`` (and
  ``shipping_task`` for the asyncio flusher of :mod:`yai_spool.shipping.aio`).
- :mod:`yai_spool.shipping.retry`: the one retry policy.

A ``mock.patch`` of a module global must name the module that uses it (e.g.
``yai_spool.shipping.thread.time``), not this one.
"""

from __future__ import annotations

from yai_spool.shipping.config import FlusherConfig, FlusherStats
from yai_spool.shipping.cycle import (
    AsyncSender,
    Sender,
    SendRequest,
    SendResult,
    ShipCycle,
    abort_sender,
    ship_async,
)
from yai_spool.shipping.marks import in_flusher_thread, mark_flusher_thread
from yai_spool.shipping.thread import ABANDON_GRACE, ThreadFlusher

__all__ = [
    "ABANDON_GRACE",
    "AsyncSender",
    "FlusherConfig",
    "FlusherStats",
    "SendRequest",
    "SendResult",
    "Sender",
    "ShipCycle",
    "ThreadFlusher",
    "abort_sender",
    "in_flusher_thread",
    "mark_flusher_thread",
    "ship_async",
]
