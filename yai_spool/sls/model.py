"""The pure data model of one SLS PutLogs body: a ``LogGroup`` of ``Log`` entries.

This module owns nothing but two immutable value types. They carry no behaviour and do no
validation on construction, because the flusher builds thousands of them per batch and the
encoders (``yai_spool.sls.encoding``) check the wire ranges anyway.

Invariants (enforced by the encoders, not here):

- ``Log.time`` is unix seconds and fits a protobuf ``uint32`` (0 .. 2**32-1).
- ``Log.time_ns`` is ``None`` (field absent on the wire) or the sub-second nanoseconds,
  0 .. 999_999_999 by meaning; the wire type is ``fixed32``, so up to 2**32-1 is encodable.
- Content keys, topic, source and tag keys/values are ``str`` and are sent as UTF-8.
- Content values are ``str`` (sent as UTF-8) or ``bytes`` (sent verbatim, so non-UTF-8 data
  survives exactly). ``decode_log_group`` always returns ``bytes`` values.
- Order is significant and preserved: logs, contents within a log (duplicate keys allowed, as
  SLS accepts them) and tags.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RESERVED_KEYS", "ContentValue", "Log", "LogGroup"]

#: Content keys the service reserves for itself (sls-protocol.md §6): a log must not carry
#: them. The record mapper renames such keys; the emulator rejects them by default.
RESERVED_KEYS: frozenset[str] = frozenset(
    {
        "__time__",
        "__source__",
        "__topic__",
        "__partition_time__",
        "_extract_others_",
        "__extract_others__",
    }
)

# bytes keep non-UTF-8 values exact; str is encoded as UTF-8 on the wire.
ContentValue = str | bytes


@dataclass(frozen=True, slots=True)
class Log:
    """One log entry (protobuf ``Log``): a timestamp and ordered key/value contents."""

    time: int
    """Unix seconds (protobuf field 1, ``uint32``)."""
    contents: tuple[tuple[str, ContentValue], ...]
    """Ordered (key, value) pairs (protobuf field 2, repeated ``Content``)."""
    time_ns: int | None = None
    """Sub-second nanoseconds (protobuf field 4, ``fixed32``); ``None`` means absent."""


@dataclass(frozen=True, slots=True)
class LogGroup:
    """The body of one PutLogs request (protobuf ``LogGroup``)."""

    logs: tuple[Log, ...]
    topic: str = ""
    """Protobuf field 3; always written, even when empty (like the official SDK)."""
    source: str = ""
    """Protobuf field 4; always written, even when empty."""
    tags: tuple[tuple[str, str], ...] = ()
    """Protobuf field 6 (``LogTags``); shown as ``__tag__:{key}`` by SLS."""
