"""Helpers of the OpenTelemetry tests: what a span's ids look like in a record."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span


def ids_of(span: Span) -> dict[str, str]:
    """The three fields a record logged inside ``span`` must carry."""
    ctx = span.get_span_context()
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "trace_flags": format(int(ctx.trace_flags), "02x"),
    }


def otel_fields(contents: Any) -> dict[str, str]:
    """The OTel fields of an entry's contents (``[[key, value], ...]``) or a record mapping."""
    items = contents.items() if hasattr(contents, "items") else contents
    return {k: v for k, v in items if k in ("trace_id", "span_id", "trace_flags")}
