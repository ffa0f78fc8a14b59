"""OpenTelemetry trace correlation: the active span's ids for each record, with no dependency.

Owns :data:`span_ids`, the one function the mapper calls per record to learn the current
span's ``(trace_id, span_id, trace_flags)``, spelled as OTel's log data model and W3C trace
context spell them: 32 and 16 lower-case hex digits, and the flags byte as 2 hex digits
(bit ``0x01``: sampled, so ``"01"`` or ``"00"``; SDKs implementing W3C trace context level 2
also set ``0x02``, a random trace id, giving ``"03"``/``"02"``). Also :data:`OTEL_KEYS`, the
default content keys: the names OTel's own logging integration gives these fields
(``LogRecord.trace_id``, ``span_id``, ``trace_flags``).

When is a span "active": the current span context (``opentelemetry.trace.get_current_span()
.get_span_context()``) is valid. That is a recording span, and also a span that was sampled
out but carries a real trace id (sampled bit clear): its trace may still be kept by another
service or a tail sampler, so the ids are still worth having.

Invariants:

- Never imports OpenTelemetry. A span can only be active in a process that imported
  ``opentelemetry.trace`` (the API that starts and activates spans), so :data:`span_ids`
  looks the module up in ``sys.modules``: without OTel installed, or installed but unused,
  each record costs one dict lookup, ``import yai_spool`` costs nothing, and ``emit`` never
  triggers an import.
- Never raises: a broken or half-imported OTel gives None (no fields), never a lost record.
- Reads the calling thread's/task's context (OTel keeps the current span in a contextvar),
  like :mod:`yai_spool.handlers.context`: asyncio tasks inherit it, threads need a copied context.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

__all__ = ["OTEL_KEYS", "SpanIds", "resolve_keys", "span_ids"]

#: Default content keys of the three fields: ``{"trace_id": ..., "span_id": ...,
#: "trace_flags": ...}``. ``otel_keys=`` maps a field to another key, or to None to omit it.
OTEL_KEYS: Final[Mapping[str, str | None]] = MappingProxyType(
    {"trace_id": "trace_id", "span_id": "span_id", "trace_flags": "trace_flags"}
)

_TRACE_MODULE: Final = "opentelemetry.trace"
_MODULES: Final = sys.modules

SpanTriple = tuple[str, str, str]


def resolve_keys(overrides: Mapping[str, str | None] | None) -> tuple[str | None, ...]:
    """The three content keys (trace id, span id, flags) after ``overrides``; None omits one.

    Raises:
        TypeError: ``overrides`` is not a mapping, or a key is not a str or None.
        ValueError: ``overrides`` names a field other than the three of :data:`OTEL_KEYS`.
    """
    if overrides is None:
        return tuple(OTEL_KEYS.values())
    if not isinstance(overrides, Mapping):
        msg = "otel_keys must be a mapping like {'trace_id': 'traceId'}"
        raise TypeError(msg)
    unknown = set(overrides) - set(OTEL_KEYS)
    if unknown:
        msg = f"otel_keys: unknown field(s) {sorted(map(str, unknown))}; known: {list(OTEL_KEYS)}"
        raise ValueError(msg)
    keys = {**OTEL_KEYS, **overrides}
    for field, key in keys.items():
        if key is not None and (not isinstance(key, str) or not key):
            msg = f"otel_keys[{field!r}] must be a non-empty str or None"
            raise TypeError(msg)
    return tuple(keys.values())


class SpanIds:
    """Callable: the current span's ``(trace_id, span_id, trace_flags)`` hex strings, or None.

    Caches the last span context's formatted ids (the records of one span share them), as
    one tuple so that threads racing on it always read a consistent pair.
    """

    __slots__ = ("_get_span", "_last")

    def __init__(self) -> None:
        self._get_span: Any = None
        self._last: tuple[Any, SpanTriple] | None = None

    def __call__(self) -> SpanTriple | None:
        """The ids of the active span (see the module docstring), or None. Never raises."""
        get_span = self._get_span
        if get_span is None:
            module = _MODULES.get(_TRACE_MODULE)
            if module is None:
                return None  # nobody imported the OTel API: no span can be active
            get_span = getattr(module, "get_current_span", None)
            if get_span is None:
                return None  # being imported right now by another thread
            self._get_span = get_span
        try:
            ctx = get_span().get_span_context()
            last = self._last
            if last is not None and last[0] is ctx:
                return last[1]
            if not ctx.is_valid:
                return None
            ids = (
                format(ctx.trace_id, "032x"),
                format(ctx.span_id, "016x"),
                format(int(ctx.trace_flags), "02x"),
            )
        except Exception:  # a broken SDK or a custom span: no fields, never a lost record
            return None
        self._last = (ctx, ids)
        return ids


#: The process-wide reader the mapper and the ASGI middleware call.
span_ids: Final = SpanIds()
