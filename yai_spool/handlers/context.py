"""Request context that rides along with every log record, carried by :mod:`contextvars`.

This module owns one context variable, :data:`RequestContext`, whose value is an *immutable*
mapping (a :class:`types.MappingProxyType`) of fields such as a trace id. Code binds fields for
the duration of a request; :class:`yai_spool.handlers.mapping.RecordMapper` reads the mapping
when it maps a record and adds every field to the entry's contents.

Invariants:

- The value of :data:`RequestContext` is never mutated in place. Every change installs a new
  mapping, so a context captured by :func:`contextvars.copy_context` (threads, executors) or
  inherited by an :mod:`asyncio` task can never observe a later change made by someone else.
- Reading the context is one ``ContextVar.get()``: this runs on the application's logging path.
- Nothing here does I/O or touches global logging configuration.

How context reaches a record:

- asyncio: every task starts with a copy of its creator's context, so ``bind()`` in a request
  handler is visible to everything that request logs, and concurrent requests stay isolated.
- threads: a new ``threading.Thread`` starts with an *empty* context. Run the target inside a
  copy (``contextvars.copy_context().run(fn)``, or :func:`propagate`); ``asyncio.to_thread`` and
  ``loop.run_in_executor`` via ``to_thread`` copy it for you.
- The mapper reads the context on the thread that calls it. When records are mapped somewhere
  else (a ``QueueHandler``/``QueueListener`` pair), add :class:`ContextFilter` to the emitting
  side: it copies the current mapping onto ``record.sls_context`` and the active OpenTelemetry
  span's ids onto ``record.sls_span``, which the mapper prefers.

OpenTelemetry: where a span is active, its ``trace_id`` / ``span_id`` / ``trace_flags``
(:mod:`yai_spool.handlers.otel`) win over bound fields of the same names; where none is, a
``trace_id`` bound here (or by the ASGI middleware) ships as bound.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Final, ParamSpec, TypeVar

from yai_spool.handlers.otel import span_ids

__all__ = [
    "CONTEXT_ATTR",
    "SPAN_ATTR",
    "TRACE_ID_KEY",
    "ContextFilter",
    "RequestContext",
    "bind",
    "current",
    "get_trace_id",
    "propagate",
    "reset",
    "set_trace_id",
    "update",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The key under which :func:`set_trace_id` stores the trace id.
TRACE_ID_KEY: Final = "trace_id"
#: Record attribute that :class:`ContextFilter` sets and the mapper reads before the contextvar.
CONTEXT_ATTR: Final = "sls_context"
#: Record attribute holding the OTel span ids captured by :class:`ContextFilter` (or None).
SPAN_ATTR: Final = "sls_span"

_EMPTY: Final[Mapping[str, object]] = MappingProxyType({})

#: The bound request fields. Its value is always an immutable mapping.
RequestContext: Final[contextvars.ContextVar[Mapping[str, object]]] = contextvars.ContextVar(
    "yai_spool.RequestContext", default=_EMPTY
)


def current() -> Mapping[str, object]:
    """Return the fields bound in the current context (an immutable mapping, possibly empty)."""
    return RequestContext.get()


def update(**values: object) -> contextvars.Token[Mapping[str, object]]:
    """Bind ``values`` on top of the current fields until :func:`reset` is called with the token.

    A value of ``None`` removes the key. This is the form for middleware that cannot wrap the
    request in a ``with`` block; prefer :func:`bind` otherwise.
    """
    merged = dict(RequestContext.get())
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return RequestContext.set(MappingProxyType(merged))


def reset(token: contextvars.Token[Mapping[str, object]]) -> None:
    """Restore the fields that were bound before the :func:`update` that returned ``token``."""
    RequestContext.reset(token)


@contextmanager
def bind(**values: object) -> Iterator[Mapping[str, object]]:
    """Bind ``values`` (``None`` removes a key) for the body of a ``with`` block.

    Yields the resulting mapping. Nesting works as expected: the inner block sees the union, and
    leaving it restores the outer fields. Usable as a decorator on synchronous functions.
    """
    token = update(**values)
    try:
        yield RequestContext.get()
    finally:
        RequestContext.reset(token)


def set_trace_id(trace_id: str | None) -> contextvars.Token[Mapping[str, object]]:
    """Bind the trace id (``None`` clears it); returns the token for :func:`reset`."""
    return update(**{TRACE_ID_KEY: trace_id})


def get_trace_id() -> str | None:
    """Return the bound trace id, or ``None``."""
    value = RequestContext.get().get(TRACE_ID_KEY)
    return None if value is None else str(value)


def propagate(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap ``fn`` so that it runs in a copy of the *caller's* current context.

    For ``threading.Thread(target=propagate(work))``: a new thread otherwise starts with an empty
    context and its records would carry no request fields.
    """
    ctx = contextvars.copy_context()

    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        return ctx.run(fn, *args, **kwargs)

    return run


class ContextFilter(logging.Filter):
    """Copy the request fields and OTel span ids onto the record; never rejects a record.

    Needed only when records are mapped on a different thread than the one that logged them
    (e.g. behind a ``QueueHandler``). Sets ``record.sls_context`` (the bound fields) and
    ``record.sls_span`` (the active span's ids, or None). Existing values are left alone so
    that a record passing several filters keeps the context of the thread that created it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Attach the context mapping (shared, immutable: no copy is needed) and accept."""
        d = record.__dict__
        if CONTEXT_ATTR not in d:
            d[CONTEXT_ATTR] = RequestContext.get()
        if SPAN_ATTR not in d:
            d[SPAN_ATTR] = span_ids()
        return True
