"""yai-spool: ship Python ``logging`` records to Alibaba Cloud Log Service through a
durable SQLite spool, so the application never waits and ``kill -9`` loses nothing.

Public API re-exports only; each name lives in the module that owns it.

Invariants:

- ``import yai_spool`` imports nothing but this module, :mod:`yai_spool.lazy` and
  :mod:`yai_spool._moved` (the release-1 module paths): every
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

from yai_spool import _moved
from yai_spool.lazy import lazy_attributes

# The first release's module paths (yai_spool.handler, yai_spool.client, ...) keep working.
_moved.install()

if TYPE_CHECKING:  # what the lazy names resolve to, for type checkers and IDEs
    from yai_spool.handlers import MemoryQueueHandler, SyncSLSHandler
    from yai_spool.handlers.configure import from_toml, make_handler
    from yai_spool.handlers.context import ContextFilter, bind, propagate
    from yai_spool.handlers.durable import SpoolHandler
    from yai_spool.handlers.mapping import LogFields
    from yai_spool.shipping.retry import RetryPolicy
    from yai_spool.sls.client import (
        AsyncPutLogsClient,
        ClientTimeouts,
        PutLogsClient,
        PutLogsResult,
    )
    from yai_spool.sls.compression import Compression
    from yai_spool.sls.credentials import Credentials
    from yai_spool.sls.errors import (
        ConfigError,
        Outcome,
        ShipError,
        SLSError,
        TransportError,
        YaiSpoolError,
    )
    from yai_spool.sls.model import Log, LogGroup

#: Public name -> the module that owns it.
_LAZY: dict[str, str] = {
    "AsyncPutLogsClient": "yai_spool.sls.client",
    "ClientTimeouts": "yai_spool.sls.client",
    "PutLogsClient": "yai_spool.sls.client",
    "PutLogsResult": "yai_spool.sls.client",
    "Compression": "yai_spool.sls.compression",
    "from_toml": "yai_spool.handlers.configure",
    "make_handler": "yai_spool.handlers.configure",
    "bind": "yai_spool.handlers.context",
    "propagate": "yai_spool.handlers.context",
    "ContextFilter": "yai_spool.handlers.context",
    "Credentials": "yai_spool.sls.credentials",
    "ConfigError": "yai_spool.sls.errors",
    "Outcome": "yai_spool.sls.errors",
    "ShipError": "yai_spool.sls.errors",
    "SLSError": "yai_spool.sls.errors",
    "TransportError": "yai_spool.sls.errors",
    "YaiSpoolError": "yai_spool.sls.errors",
    "SpoolHandler": "yai_spool.handlers.durable",
    "LogFields": "yai_spool.handlers.mapping",
    "Log": "yai_spool.sls.model",
    "LogGroup": "yai_spool.sls.model",
    "MemoryQueueHandler": "yai_spool.handlers",
    "SyncSLSHandler": "yai_spool.handlers",
    "RetryPolicy": "yai_spool.shipping.retry",
}

__all__ = [
    "AsyncPutLogsClient",
    "ClientTimeouts",
    "Compression",
    "ConfigError",
    "ContextFilter",
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
    "propagate",
]


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
