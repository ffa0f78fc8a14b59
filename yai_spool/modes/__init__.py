"""The delivery modes beside the durable ``SpoolHandler``, on one shared core.

- :class:`SyncSLSHandler` (:mod:`yai_spool.modes.sync`): one PutLogs call per record,
  bounded timeout, no queue.
- :class:`MemoryQueueHandler` (:mod:`yai_spool.modes.memory`): a bounded in-memory queue
  drained in batches by the shared flusher (a thread, or an asyncio task).
- The asyncio flusher, its lifespan and the durable asyncio handler live in
  :mod:`yai_spool.aio`; the request-context middleware in :mod:`yai_spool.asgi`; the one
  configuration surface that picks a mode in :mod:`yai_spool.configure`.

The shared parts are in :mod:`yai_spool.modes.core`.
"""

from yai_spool.modes.memory import MemoryQueueHandler
from yai_spool.modes.sync import SyncSLSHandler

__all__ = ["MemoryQueueHandler", "SyncSLSHandler"]
