"""``RequestContextMiddleware``: bind a trace id, method and path to every record of a request.

Owns the ASGI side of request context. A pure ASGI middleware (no Starlette import, works
under FastAPI, Starlette, Quart, Litestar or a bare ASGI app): for each HTTP or WebSocket
connection it binds, through :mod:`yai_spool.handlers.context`,

- ``trace_id``: the trace id of the active OpenTelemetry span when one is active as the
  request reaches this middleware (OTel's ASGI instrumentation added outside it), else the
  trace id of a valid W3C ``traceparent`` header, else a valid ``x-request-id`` header, else
  a fresh random one (32 hex digits, the W3C trace-id shape);
- ``http_method`` and ``http_path`` (names configurable, ``None`` leaves one out);

for exactly the duration of the request, and echoes the id in a response header
(``x-request-id`` by default) so a client can quote it.

Precedence with OpenTelemetry: records made while a span is active carry that span's ids
(:mod:`yai_spool.handlers.otel`), whatever this middleware bound; the bound ``trace_id`` fills in
where no span is active (code outside any span). Taking the span's trace id here keeps the
two equal, so the echoed id is also the trace id in the tracing backend.

How the fields reach records: every handler of yai-spool maps records with
:class:`~yai_spool.handlers.mapping.RecordMapper`, which adds the bound fields to each record's
contents. The binding is a :mod:`contextvars` value, so it follows the request into every
task it creates (asyncio copies the context into new tasks) and into threads started with a
copy of it: FastAPI/Starlette run ``def`` endpoints and dependencies through
``anyio.to_thread.run_sync``, which copies the context; ``asyncio.to_thread`` does too; a
plain ``threading.Thread`` needs :func:`yai_spool.handlers.context.propagate`.

Invariants:

- Incoming ids are validated before use (a header is attacker-controlled): ``traceparent``
  must match the W3C format with a non-zero trace id; ``x-request-id`` must be 1-128
  characters of ``[A-Za-z0-9._:/+=-]``. Anything else is ignored and a fresh id is used.
- The previous context is restored when the request ends, even if the app raises; nothing
  leaks from one request into the next on the same worker task.
- An existing response header of the same name (set by the app) is left alone.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from yai_spool.handlers import context
from yai_spool.handlers.otel import span_ids

__all__ = ["RequestContextMiddleware", "trace_id_from_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def _traceparent_id(value: str) -> str | None:
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None or match.group(1) == "ff":  # version ff is forbidden by the spec
        return None
    trace_id, parent_id = match.group(2), match.group(3)
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return trace_id


def trace_id_from_headers(
    headers: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...],
    request_id_header: bytes = b"x-request-id",
) -> str | None:
    """The trace id a request carries (``traceparent`` first), or None. Pure; validates."""
    traceparent = request_id = None
    for name, value in headers:
        if name == b"traceparent" and traceparent is None:
            traceparent = value
        elif name == request_id_header and request_id is None:
            request_id = value
    if traceparent is not None:
        found = _traceparent_id(traceparent.decode("latin-1"))
        if found is not None:
            return found
    if request_id is not None:
        text = request_id.decode("latin-1").strip()
        if _REQUEST_ID.fullmatch(text):
            return text
    return None


def _new_id() -> str:
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Pure ASGI middleware binding ``trace_id`` / method / path for each request.

    Args:
        app: the ASGI application to wrap.
        header: the request header read as an id (after ``traceparent``) and the response
            header the id is echoed in. Default ``x-request-id``; ``echo=False`` disables
            the echo.
        method_key, path_key: context keys of the method and path (``None`` omits one).
        trust_incoming: use ids from request headers (default True); False always makes a
            fresh id (e.g. at an edge that must not let clients pick ids).
        id_factory: makes fresh ids (default: 32 random hex digits).

    Usage: ``app.add_middleware(RequestContextMiddleware)`` (FastAPI/Starlette) or
    ``app = RequestContextMiddleware(app)``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        header: str = "x-request-id",
        echo: bool = True,
        method_key: str | None = "http_method",
        path_key: str | None = "http_path",
        trust_incoming: bool = True,
        id_factory: Callable[[], str] = _new_id,
    ) -> None:
        self.app = app
        self.header = header.lower().encode("latin-1")
        self.echo = echo
        self.method_key, self.path_key = method_key, path_key
        self.trust_incoming = trust_incoming
        self.id_factory = id_factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan and anything else: untouched
            return
        span = span_ids()
        trace_id = span[0] if span is not None else None
        if trace_id is None and self.trust_incoming:
            trace_id = trace_id_from_headers(scope.get("headers") or (), self.header)
        if trace_id is None:
            trace_id = self.id_factory()
        fields: dict[str, object] = {context.TRACE_ID_KEY: trace_id}
        if self.method_key is not None and kind == "http":
            fields[self.method_key] = scope.get("method")
        if self.path_key is not None:
            fields[self.path_key] = scope.get("path")
        scope.setdefault("state", {})["trace_id"] = trace_id  # request.state.trace_id
        token = context.update(**fields)
        try:
            if self.echo and kind == "http":
                await self.app(scope, receive, self._echoing(send, trace_id))
            else:
                await self.app(scope, receive, send)
        finally:
            context.reset(token)

    def _echoing(self, send: Send, trace_id: str) -> Send:
        header, value = self.header, trace_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message.get("type") == "http.response.start":
                headers = list(message.get("headers") or ())
                if all(name.lower() != header for name, _ in headers):
                    headers.append((header, value))
                    message["headers"] = headers
            await send(message)

        return send_with_id
