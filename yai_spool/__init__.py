"""yai-spool: ship Python ``logging`` records to Alibaba Cloud Log Service through a
durable SQLite spool, so the application never waits and ``kill -9`` loses nothing.

Public API re-exports only; each name lives in the module that owns it.

Invariants:

- ``import yai_spool`` imports nothing but this module and :mod:`yai_spool.lazy`: every
  public name is resolved on first access (PEP 562 module ``__getattr__``) from the module
  that owns it, then cached in this module's namespace, so the second access is a plain
  attribute read. A process that
  only logs never imports httpx, rich, typer or watchdog (``tests/test_imports.py``).
- ``from yai_spool import X`` works for every name in ``__all__``; type checkers and IDEs
  see the real objects through the ``TYPE_CHECKING`` imports below.
- The emit path never triggers an import: the handlers import what ``emit`` needs when
  they are built, and the HTTP client is built on the first send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from yai_spool.lazy import lazy_attributes

if TYPE_CHECKING:  # what the lazy names resolve to, for type checkers and IDEs
    from yai_spool.client import AsyncPutLogsClient, ClientTimeouts, PutLogsClient, PutLogsResult
    from yai_spool.compression import Compression
    from yai_spool.configure import from_toml, make_handler
    from yai_spool.context import bind
    from yai_spool.credentials import Credentials
    from yai_spool.errors import (
        ConfigError,
        Outcome,
        ShipError,
        SLSError,
        TransportError,
        YaiSpoolError,
    )
    from yai_spool.handler import SpoolHandler
    from yai_spool.mapping import LogFields
    from yai_spool.model import Log, LogGroup
    from yai_spool.modes import MemoryQueueHandler, SyncSLSHandler
    from yai_spool.retry import RetryPolicy

#: Public name -> the module that owns it.
_LAZY: dict[str, str] = {
    "AsyncPutLogsClient": "yai_spool.client",
    "ClientTimeouts": "yai_spool.client",
    "PutLogsClient": "yai_spool.client",
    "PutLogsResult": "yai_spool.client",
    "Compression": "yai_spool.compression",
    "from_toml": "yai_spool.configure",
    "make_handler": "yai_spool.configure",
    "bind": "yai_spool.context",
    "Credentials": "yai_spool.credentials",
    "ConfigError": "yai_spool.errors",
    "Outcome": "yai_spool.errors",
    "ShipError": "yai_spool.errors",
    "SLSError": "yai_spool.errors",
    "TransportError": "yai_spool.errors",
    "YaiSpoolError": "yai_spool.errors",
    "SpoolHandler": "yai_spool.handler",
    "LogFields": "yai_spool.mapping",
    "Log": "yai_spool.model",
    "LogGroup": "yai_spool.model",
    "MemoryQueueHandler": "yai_spool.modes",
    "SyncSLSHandler": "yai_spool.modes",
    "RetryPolicy": "yai_spool.retry",
}

__all__ = [
    "AsyncPutLogsClient",
    "ClientTimeouts",
    "Compression",
    "ConfigError",
    "Credentials",
    "Log",
    "LogFields",
    "LogGroup",
    "MemoryQueueHandler",
    "Outcome",
    "PutLogsClient",
    "PutLogsResult",
    "RetryPolicy",
    "SLSError",
    "ShipError",
    "SpoolHandler",
    "SyncSLSHandler",
    "TransportError",
    "YaiSpoolError",
    "bind",
    "from_toml",
    "make_handler",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
