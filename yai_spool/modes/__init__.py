"""The delivery modes beside the durable ``SpoolHandler``, on one shared core.

- :class:`SyncSLSHandler` (:mod:`yai_spool.modes.sync`): one PutLogs call per record,
  bounded timeout, no queue.
- :class:`MemoryQueueHandler` (:mod:`yai_spool.modes.memory`): a bounded in-memory queue
  drained in batches by the shared flusher (a thread, or an asyncio task).
- The asyncio flusher, its lifespan and the durable asyncio handler live in
  :mod:`yai_spool.aio`; the request-context middleware in :mod:`yai_spool.asgi`; the one
  configuration surface that picks a mode in :mod:`yai_spool.configure`.

The shared parts are in :mod:`yai_spool.modes.core`. The two handler classes are resolved
on first access (PEP 562), so ``SpoolHandler``, which only needs the core, does not import
them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yai_spool.modes.memory import MemoryQueueHandler
    from yai_spool.modes.sync import SyncSLSHandler

_LAZY = {
    "MemoryQueueHandler": "yai_spool.modes.memory",
    "SyncSLSHandler": "yai_spool.modes.sync",
}

__all__ = ["MemoryQueueHandler", "SyncSLSHandler"]


def __getattr__(name: str) -> Any:
    """Resolve a handler class on first use and cache it here (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's own attributes plus the lazy handler classes."""
    return sorted(set(globals()) | set(__all__))
