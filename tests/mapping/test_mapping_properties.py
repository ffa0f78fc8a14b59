"""Property tests: whatever a record carries, map() returns an entry that keeps every invariant."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mapping_support import StrRaises, check_entry, encode_both_ways, make_record
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from yai_spool.handlers import mapping
from yai_spool.handlers.context import bind
from yai_spool.handlers.mapping import RESERVED_KEYS, RecordMapper

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class RaisesOnBool(StrRaises):
    def __bool__(self) -> bool:
        raise RuntimeError("bool")


class StrSubclassStr:
    class S(str):
        pass

    def __str__(self) -> str:
        return self.S("\ud800 sub")


def _recursive_list() -> list[Any]:
    value: list[Any] = ["x"]
    value.append(value)
    return value


def _recursive_dict() -> dict[str, Any]:
    value: dict[str, Any] = {}
    value["self"] = value
    return value


# Text that includes lone surrogates and every plane.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
keys = st.one_of(
    any_text,
    st.sampled_from(
        [*sorted(RESERVED_KEYS), "__tag__:x", "1abc", "", "a" * 300, "日本", "trace_id"]
    ),
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    # Beyond str()'s digit limit; built by map() so hypothesis never has to print the choice.
    st.integers(0, 99).map(lambda n: 7 * 10 ** (4400 + n)),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    st.binary(max_size=40),
    st.decimals(allow_nan=True),
    st.datetimes(),
    st.builds(dt.timedelta, seconds=st.integers(-(10**6), 10**6)),
    st.sets(st.integers(), max_size=4),
    st.just(Decimal("NaN")),
    st.builds(StrRaises),
    st.builds(StrSubclassStr),
    st.builds(_recursive_list),
    st.builds(_recursive_dict),
    st.just(print),
)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(
            st.one_of(any_text, st.integers(), st.none(), st.tuples()), children, max_size=4
        ),
    ),
    max_leaves=12,
)

mappers = st.builds(
    RecordMapper,
    extract_json=st.booleans(),
    extract_kv=st.booleans(),
    extract_json_drop_message=st.booleans(),
    extract_kv_drop_message=st.booleans(),
    buildin_fields_prefix=st.sampled_from(["", "__", "9", "é"]),
    exception_key=st.sampled_from(["exc_text", None]),
    max_value_bytes=st.sampled_from([64, 200, 1024 * 1024]),
    max_entry_bytes=st.sampled_from([4096, 5 * 1024 * 1024]),
    json_ensure_ascii=st.booleans(),
)


def _check(mapper: RecordMapper, record: logging.LogRecord) -> None:
    entry = mapper.map(record)
    check_entry(
        entry, max_value_bytes=mapper.max_value_bytes, max_entry_bytes=mapper.max_entry_bytes
    )
    assert not mapping._NOTHING_SEEN  # the shared read-only sentinel stays empty


@SETTINGS
@given(mapper=mappers, extras=st.dictionaries(keys, values, max_size=8))
def test_hostile_extras_keep_every_invariant(mapper: RecordMapper, extras: dict[str, Any]) -> None:
    """Random keys and values on a record never raise and always give a valid entry."""
    record = make_record("m=1 %s", ("arg",))
    record.__dict__.update(extras)  # bypasses makeRecord's refusal of standard names on purpose
    _check(mapper, record)


@SETTINGS
@given(
    mapper=mappers,
    msg=values,
    args=st.one_of(st.none(), st.tuples(values), st.dictionaries(any_text, values, max_size=2)),
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "levelname",
                "lineno",
                "created",
                "created_ns",
                "exc_text",
                "stack_info",
                "exc_info",
                "funcName",
                "sls_topic",
                "sls_source",
                "sls_tags",
                "sls_context",
                "thread",
            ]
        ),
        st.one_of(values, st.builds(RaisesOnBool)),
        max_size=5,
    ),
)
def test_hostile_record_attributes_keep_every_invariant(
    mapper: RecordMapper, msg: Any, args: Any, overrides: dict[str, Any]
) -> None:
    """Junk in msg, args and standard/override attributes still gives a valid entry."""
    record = make_record()
    # Set after construction: LogRecord.__init__ itself chokes on some args shapes.
    record.__dict__.update(msg=msg, args=args, **overrides)
    _check(mapper, record)


@SETTINGS
@given(mapper=mappers, bound=st.dictionaries(keys, values, max_size=5))
def test_hostile_context_keeps_every_invariant(mapper: RecordMapper, bound: dict[str, Any]) -> None:
    """Anything bound in the request context maps to valid, unique keys and bounded values."""
    with bind(**{k: v for k, v in bound.items()}):
        _check(mapper, make_record(extra={"trace_id": "explicit"}))


@SETTINGS
@given(
    text=st.text(st.characters(codec=None, exclude_categories=()), max_size=300),
    limit=st.integers(64, 400),
)
def test_truncation_respects_limit_and_boundaries(text: str, limit: int) -> None:
    """Any text is cut to <= limit UTF-8 bytes with the marker, or passed through unchanged."""
    mapper = RecordMapper(fields=[], max_value_bytes=limit)
    entry = mapper.map(make_record(extra={"v": text}))
    check_entry(entry, max_value_bytes=limit, max_entry_bytes=mapper.max_entry_bytes)
    (value,) = [v for k, v in entry["contents"] if k == "v"]
    if (
        len(text.encode("utf-8", "surrogatepass")) <= limit
        and text.encode("utf-8", "ignore").decode() == text
    ):
        assert value == text


# --- the fast path (_encode_plain) gives exactly the reference path's bytes ------------------

plain_text = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    st.text(st.characters(codec="utf-8"), max_size=30),  # non-ASCII, no surrogates
    st.text(max_size=10).map(lambda s: s * 500),  # past the fast-path length
    any_text,  # lone surrogates: the reference path repairs them
)
plain_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    plain_text,
    st.just(print),  # callables are skipped
    st.just(b"bytes"),  # not plain: the reference path decides
)
plain_keys = st.one_of(
    st.sampled_from(["order_id", "ms", "user", "name", "message", "lineno", "trace_id", "x-y"]),
    st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8),
)
plain_mappers = st.builds(
    RecordMapper,
    fields=st.one_of(st.none(), st.just(["level", "record_name"]), st.just([])),
    extra=st.booleans(),
    buildin_fields_prefix=st.sampled_from(["", "p_"]),
    max_value_bytes=st.sampled_from([64, 1024 * 1024]),
    max_entry_bytes=st.sampled_from([4096, 65536, 5 * 1024 * 1024]),
    tags=st.one_of(st.none(), st.just({"z": "1", "a": "2"})),
    topic=st.one_of(st.none(), st.just("t")),
    context=st.booleans(),
)


@SETTINGS
@given(
    mapper=plain_mappers,
    msg=plain_text,
    extras=st.dictionaries(plain_keys, plain_values, max_size=6),
    bound=st.dictionaries(plain_keys, plain_values, max_size=3),
)
def test_fast_path_equals_reference_path(
    mapper: RecordMapper, msg: str, extras: dict[str, Any], bound: dict[str, Any]
) -> None:
    """Whenever _encode_plain answers, its bytes and overrides are the reference path's."""
    extras = {k: v for k, v in extras.items() if k not in mapping._STANDARD_ATTRS}
    record = make_record(msg.replace("%", "%%"), None, extra=extras)
    with bind(**bound):
        encode_both_ways(mapper, record)


span_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
span_values = st.one_of(st.none(), st.integers(), st.floats(), span_text, st.just(b"b"))
#: Keys that collide with the span's fields, under their default names or a prefix.
span_keys = st.sampled_from(
    ["trace_id", "span_id", "trace_flags", "order", "message", "lineno", "p_trace_id", "x-y"]
)


@SETTINGS
@given(
    prefix=st.sampled_from(["", "p_"]),
    keys=st.sampled_from([None, {"trace_id": "traceId"}, {"span_id": None}, {"trace_id": "order"}]),
    msg=span_text,
    extras=st.dictionaries(span_keys, span_values, max_size=4),
    bound=st.dictionaries(span_keys, span_values, max_size=3),
    sampled=st.booleans(),
)
def test_fast_path_equals_reference_path_in_a_span(  # noqa: PLR0917 - hypothesis arguments
    prefix: str,
    keys: dict[str, str | None] | None,
    msg: str,
    extras: dict[str, Any],
    bound: dict[str, Any],
    sampled: bool,
) -> None:
    """With an OpenTelemetry span active, _encode_plain gives exactly the reference path's bytes."""
    mapper = RecordMapper(buildin_fields_prefix=prefix, otel_keys=keys)
    extras = {k: v for k, v in extras.items() if k not in mapping._STANDARD_ATTRS}
    rec = make_record(msg.replace("%", "%%"), None, extra=extras)
    flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
    span = NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=flags))
    with bind(**bound), trace.use_span(span):
        public = encode_both_ways(mapper, rec)
    got = public.entry()["contents"]
    trace_key = prefix + ((keys or {}).get("trace_id") or "trace_id")
    values = [v for k, v in got if v == format(0xABC, "032x")]
    assert values, got  # the trace id is always there, under its key or a deduplicated one
    assert any(k.startswith(trace_key) for k, v in got if v == values[0])


def test_fast_path_is_taken_for_a_typical_record() -> None:
    """The fast path must not silently decline the common case (it would only cost speed)."""
    mapper = RecordMapper()
    record = make_record("user %s paid %d EUR", ("u-1", 12), extra={"order_id": "o-1", "ms": 1.5})
    with bind(trace_id="0af7651916cd43dd8448eb211c80319c"):
        fast = mapper._encode_plain(record)
        assert isinstance(fast, mapping.EncodedRecord)
        assert fast == mapper._encode(record, None)
    entry = fast.entry()
    assert entry["contents"][0] == ["message", "user u-1 paid 12 EUR"]
    assert ["order_id", "o-1"] in entry["contents"]
    assert ["ms", "1.5"] in entry["contents"]
    assert ["trace_id", "0af7651916cd43dd8448eb211c80319c"] in entry["contents"]
