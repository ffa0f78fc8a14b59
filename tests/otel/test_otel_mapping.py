"""OpenTelemetry span ids in mapped records, with the real OTel SDK (``opentelemetry-sdk``).

The mapper's two paths (the fast path for plain records and the reference path) must agree
byte for byte with a span active too (a property test beside the plain one, in
tests/mapping/test_mapping_properties.py); the precedence rule is: an active span's ids win over
bound context fields of the same names, which fill in where no span is active.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, Tracer
from otel_support import ids_of, otel_fields

from yai_spool.handlers import mapping
from yai_spool.handlers.context import ContextFilter, bind
from yai_spool.handlers.mapping import RecordMapper
from yai_spool.handlers.otel import OTEL_KEYS, SpanIds, resolve_keys

LOGGER = logging.getLogger("tests.otel")
HEX32 = r"[0-9a-f]{32}"


def record(msg: str = "hello", **extra: Any) -> logging.LogRecord:
    return LOGGER.makeRecord(LOGGER.name, logging.INFO, __file__, 7, msg, None, None, extra=extra)


def contents(rec: logging.LogRecord, mapper: RecordMapper | None = None) -> list[list[str]]:
    return (mapper or RecordMapper()).map(rec)["contents"]


def test_a_record_in_a_span_carries_its_ids(tracer: Tracer) -> None:
    """trace_id (32 hex), span_id (16 hex), trace_flags (sampled bit set): the span's."""
    mapper = RecordMapper()
    with tracer.start_as_current_span("checkout") as span:
        rec = record("paid", order_id="o-1")
        fast = mapper._encode_plain(rec)
        reference = mapper._encode(rec, None)
    assert isinstance(fast, mapping.EncodedRecord)  # the common record stays on the fast path
    assert fast == reference
    assert otel_fields(fast.entry()["contents"]) == ids_of(span)
    assert int(ids_of(span)["trace_flags"], 16) & 0x01  # sampled (the SDK may add 0x02)


def test_no_span_no_fields(tracer: Tracer) -> None:
    """Outside any span (and after one ended) nothing is added."""
    with tracer.start_as_current_span("done"):
        pass
    assert otel_fields(contents(record())) == {}


def test_a_sampled_out_span_still_correlates(unsampled_tracer: Tracer) -> None:
    """Not recording but valid: real ids, the sampled bit clear."""
    with unsampled_tracer.start_as_current_span("quiet") as span:
        assert not span.is_recording()
        fields = otel_fields(contents(record()))
    assert fields == ids_of(span)
    assert int(fields["trace_flags"], 16) & 0x01 == 0


def test_an_invalid_span_context_adds_nothing() -> None:
    """The API's INVALID_SPAN (what no-op tracers hand out) is not a span."""
    with trace.use_span(NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)):
        assert otel_fields(contents(record())) == {}


def test_an_active_span_wins_over_a_bound_trace_id(tracer: Tracer) -> None:
    """Precedence: span ids replace bound fields of the same name; others stay."""
    with bind(trace_id="bound-id", tenant="acme"):
        with tracer.start_as_current_span("inner") as span:
            inside = contents(record())
        outside = contents(record())
    assert otel_fields(inside) == ids_of(span)
    assert ["tenant", "acme"] in inside
    assert [k for k, _ in inside].count("trace_id") == 1
    assert ["trace_id", "bound-id"] in outside  # no span: the bound id ships
    assert "span_id" not in dict(outside)


def test_an_extra_keeps_its_key_and_the_span_id_is_deduplicated(tracer: Tracer) -> None:
    """An explicit ``extra={"trace_id": ...}`` is the caller's own field: it is kept."""
    with tracer.start_as_current_span("s") as span:
        got = dict(contents(record(trace_id="mine")))
    assert got["trace_id"] == "mine"
    assert got["trace_id_2"] == ids_of(span)["trace_id"]


def test_keys_are_configurable_and_can_be_omitted(tracer: Tracer) -> None:
    """``otel_keys`` renames a field or drops it (None); the prefix applies like context keys."""
    mapper = RecordMapper(
        otel_keys={"trace_id": "traceId", "trace_flags": None}, buildin_fields_prefix="p_"
    )
    with tracer.start_as_current_span("s") as span:
        got = dict(contents(record(), mapper))
    ids = ids_of(span)
    assert got["p_traceId"] == ids["trace_id"]
    assert got["p_span_id"] == ids["span_id"]
    assert "p_trace_flags" not in got
    assert "trace_flags" not in got


def test_otel_false_turns_it_off(tracer: Tracer) -> None:
    """``otel=False``: no fields, and a bound trace id ships even inside a span."""
    with bind(trace_id="bound"), tracer.start_as_current_span("s"):
        got = dict(contents(record(), RecordMapper(otel=False)))
    assert got["trace_id"] == "bound"
    assert "span_id" not in got


@pytest.mark.parametrize(
    ("keys", "error"),
    [({"trace": "x"}, ValueError), ({"trace_id": 3}, TypeError), (["trace_id"], TypeError)],
)
def test_invalid_otel_keys_are_refused(keys: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        RecordMapper(otel_keys=keys)


def test_default_keys_are_otels_names() -> None:
    assert resolve_keys(None) == ("trace_id", "span_id", "trace_flags")
    assert dict(OTEL_KEYS) == {k: k for k in ("trace_id", "span_id", "trace_flags")}


def test_context_filter_carries_the_span_across_threads(tracer: Tracer) -> None:
    """A record filtered where it was made keeps that span's ids when mapped elsewhere."""
    with tracer.start_as_current_span("producer") as span:
        rec = record()
        ContextFilter().filter(rec)
    got = otel_fields(contents(rec))  # mapped outside the span (as a QueueListener would)
    assert got == ids_of(span)
    assert "sls_span" not in dict(contents(rec))  # an override attribute, never shipped


def test_a_broken_otel_gives_no_fields_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """An SDK that raises (or a half-imported module) must not cost the record."""

    class Broken:
        @staticmethod
        def get_current_span() -> Any:
            raise RuntimeError("broken tracer")

    reader = SpanIds()
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", Broken)
    assert reader() is None
    half = SpanIds()
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", object())  # no attribute yet
    assert half() is None
