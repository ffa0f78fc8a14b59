"""yai-spool: ship Python ``logging`` records to Alibaba Cloud Log Service through a
durable SQLite spool, so the application never waits and ``kill -9`` loses nothing.

Public API re-exports only; each name lives in the module that owns it.
"""

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
