"""The delivery modes beside the durable ``SpoolHandler``, on one shared core.

- :class:`SyncSLSHandler` (:mod:`yai_spool.handlers.sync`): one PutLogs call per record,
  bounded timeout, no queue.
- :class:`MemoryQueueHandler` (:mod:`yai_spool.handlers.memory`): a bounded in-memory queue
  drained in batches by the shared flusher (a thread, or an asyncio task).
- The durable asyncio handler is :mod:`yai_spool.handlers.async_spool`; the asyncio flusher
  and its lifespan live in :mod:`yai_spool.handlers.aio` (the asyncio public surface); the
  request-context middleware in :mod:`yai_spool.handlers.asgi`; the one configuration
  surface that picks a mode in :mod:`yai_spool.handlers.configure`.

Every keyword of every handler is declared once, in :mod:`yai_spool.handlers.options`;
:mod:`yai_spool.handlers.base` builds a handler from those options (checks first, logging
registration last). The shared runtime parts are in :mod:`yai_spool.handlers.core`.
Imports run one way (each module imports only those before it): options, core, base,
durable / memory / sync, async_spool, configure, aio. The two handler classes below are
resolved on first access (PEP 562), so ``SpoolHandler``, which only needs the core, does not
import them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yai_spool.lazy import lazy_attributes

if TYPE_CHECKING:
    from yai_spool.handlers.memory import MemoryQueueHandler
    from yai_spool.handlers.sync import SyncSLSHandler

_LAZY = {
    "MemoryQueueHandler": "yai_spool.handlers.memory",
    "SyncSLSHandler": "yai_spool.handlers.sync",
}

__all__ = ["MemoryQueueHandler", "SyncSLSHandler"]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
