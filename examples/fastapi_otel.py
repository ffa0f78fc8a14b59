"""The FastAPI example of ``fastapi_app.py`` behind OpenTelemetry's own ASGI instrumentation.

What it adds: ``opentelemetry-instrumentation-asgi``'s ``OpenTelemetryMiddleware`` opens a
server span per request (continuing an incoming W3C ``traceparent``), and every record the
request logs carries that span's ``trace_id`` / ``span_id`` / ``trace_flags``, with nothing
configured in yai-spool: the handler notices the active span by itself. yai-spool's
``RequestContextMiddleware`` (inside the OTel one) takes the span's trace id as its request
id, so the ``x-request-id`` response header is the trace id of the tracing backend.

Precedence: inside a span the span's ids win; records outside any span (the startup and
shutdown lines) carry no trace fields, as before.

Needs ``pip install opentelemetry-sdk opentelemetry-instrumentation-asgi`` (not a yai-spool
dependency). Run it: ``uvicorn --app-dir examples fastapi_otel:app``; the environment of
``fastapi_app.py`` applies.
"""

from __future__ import annotations

from fastapi_app import app
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider

# A real service also adds a span processor and an exporter (OTLP...); correlation needs none.
trace.set_tracer_provider(TracerProvider())

# Starlette runs the middleware added last outermost: the span is open before
# RequestContextMiddleware (added in fastapi_app) binds the request's context.
app.add_middleware(OpenTelemetryMiddleware)

__all__ = ["app"]
