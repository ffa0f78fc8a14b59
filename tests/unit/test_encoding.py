"""LogGroup encoding/decoding: the §3.3 worked example, encoder agreement, decoder strictness."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yai_spool.sls import encoding
from yai_spool.sls.encoding import ENCODERS, decode_log_group, encode_log_group
from yai_spool.sls.errors import DecodeError, EncodeError, ProtocolError
from yai_spool.sls.model import Log, LogGroup

# sls-protocol.md §3.3: Topic mytopic, Source 10.0.0.1, tag env=test, one Log.
EXAMPLE_HEX = (
    "0a280880f2d6ca06120d0a056c6576656c1204494e464f120c0a036d7367120568656c6c6f2515cd5b07"
    "1a076d79746f706963220831302e302e302e31320b0a03656e76120474657374"
)
EXAMPLE = LogGroup(
    logs=(Log(1767225600, (("level", "INFO"), ("msg", "hello")), 123456789),),
    topic="mytopic",
    source="10.0.0.1",
    tags=(("env", "test"),),
)

UINT32_MAX = 2**32 - 1


def as_decoded(group: LogGroup) -> LogGroup:
    """What decode_log_group returns for `group`: every value as bytes."""
    return LogGroup(
        tuple(
            Log(
                log.time,
                tuple((k, v.encode() if isinstance(v, str) else v) for k, v in log.contents),
                log.time_ns,
            )
            for log in group.logs
        ),
        group.topic,
        group.source,
        group.tags,
    )


# The encoder's varint builds the hand-made inputs below; test_varint_known_values pins it.
varint = encoding._varint


def ld(tag: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return bytes([tag]) + varint(len(payload)) + payload


def content(key: bytes, value: bytes) -> bytes:
    return ld(0x12, ld(0x0A, key) + ld(0x12, value))


# --- strategies ---------------------------------------------------------------------------

texts = st.text(max_size=12)
values = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),  # non-UTF-8 bytes included
    st.binary(min_size=120, max_size=400),  # multi-byte length varints
    st.just(""),
    st.just(b""),
    st.just(b"\xff\x00bin"),
)
time_ns = st.one_of(
    st.none(), st.just(0), st.just(999_999_999), st.just(UINT32_MAX), st.integers(0, UINT32_MAX)
)
logs = st.builds(
    Log,
    time=st.one_of(st.integers(0, UINT32_MAX), st.just(0), st.just(UINT32_MAX)),
    contents=st.lists(st.tuples(texts, values), max_size=25).map(tuple),
    time_ns=time_ns,
)
groups = st.builds(
    LogGroup,
    logs=st.lists(logs, max_size=6).map(tuple),
    topic=st.text(max_size=20),
    source=st.text(max_size=20),
    tags=st.lists(st.tuples(texts, texts), max_size=4).map(tuple),
)


# --- the worked example -------------------------------------------------------------------


def test_varint_known_values() -> None:
    """Base-128, least significant group first, high bit = more (protobuf's varint)."""
    known = {0: "00", 1: "01", 127: "7f", 128: "8001", 300: "ac02", 16383: "ff7f"}
    known |= {16384: "808001", 2**32 - 1: "ffffffff0f", 2**32: "8080808010"}
    assert {value: varint(value).hex() for value in known} == known


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_reproduces_the_worked_example(name: str) -> None:
    raw = ENCODERS[name](EXAMPLE)
    assert raw.hex() == EXAMPLE_HEX
    assert len(raw) == 74


def test_decoder_reads_the_worked_example() -> None:
    assert decode_log_group(bytes.fromhex(EXAMPLE_HEX)) == as_decoded(EXAMPLE)


def test_default_encoder_is_one_of_the_registered_ones() -> None:
    assert encode_log_group in ENCODERS.values()
    assert encode_log_group(EXAMPLE).hex() == EXAMPLE_HEX


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_topic_and_source_are_written_even_when_empty(name: str) -> None:
    assert ENCODERS[name](LogGroup(())) == b"\x1a\x00\x22\x00"


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_time_ns_zero_is_written_and_none_is_absent(name: str) -> None:
    with_zero = ENCODERS[name](LogGroup((Log(1, (), 0),)))
    absent = ENCODERS[name](LogGroup((Log(1, (), None),)))
    assert with_zero == b"\x0a\x07\x08\x01\x25\x00\x00\x00\x00\x1a\x00\x22\x00"
    assert absent == b"\x0a\x02\x08\x01\x1a\x00\x22\x00"


# --- encoder agreement --------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(groups)
def test_all_encoders_are_byte_identical_and_decode_round_trips(group: LogGroup) -> None:
    python = ENCODERS["python"](group)
    assert ENCODERS["protobuf"](group) == python
    assert ENCODERS["fastpb"](group) == python
    assert decode_log_group(python) == as_decoded(group)


@settings(max_examples=50, deadline=None)
@given(groups)
def test_python_encoder_is_stable_across_cache_states(group: LogGroup) -> None:
    first = ENCODERS["python"](group)
    encoding._HEADS.clear()
    encoding._PIECES.clear()
    encoding._TRAILERS.clear()
    assert ENCODERS["python"](group) == first


def test_large_values_use_multi_byte_lengths() -> None:
    big = LogGroup((Log(5, (("blob", b"x" * 300_000), ("s", "é" * 70_000)), 7),), "t", "s")
    raw = ENCODERS["python"](big)
    assert raw == ENCODERS["protobuf"](big) == ENCODERS["fastpb"](big)
    assert decode_log_group(raw) == as_decoded(big)


def test_caches_stay_bounded_and_correct_with_many_distinct_keys() -> None:
    keys = [f"k{i}" for i in range(encoding._HEADS_MAX + 500)]
    group = LogGroup(tuple(Log(1, ((key, "v"), (key, key)), None) for key in keys))
    assert ENCODERS["python"](group) == ENCODERS["protobuf"](group)
    assert len(encoding._HEADS) <= encoding._HEADS_MAX
    assert len(encoding._PIECES) <= encoding._PIECES_MAX


def test_python_encoder_accepts_list_pairs_and_bytes_like_values() -> None:
    # Callers converting JSON spool entries may hand over lists; the result must not change.
    listy = LogGroup((Log(1, [["a", "1"], ["b", bytearray(b"\xff")]], None),))  # type: ignore[arg-type]
    plain = LogGroup((Log(1, (("a", "1"), ("b", b"\xff")), None),))
    assert ENCODERS["python"](listy) == ENCODERS["python"](plain)


BAD_GROUPS = {
    "time negative": LogGroup((Log(-1, ()),)),
    "time above uint32": LogGroup((Log(2**32, ()),)),
    "time_ns above fixed32": LogGroup((Log(1, (), 2**32),)),
    "time_ns negative": LogGroup((Log(1, (), -1),)),
    "value is int": LogGroup((Log(1, (("k", 5),)),)),  # type: ignore[arg-type]
    "lone surrogate in key": LogGroup((Log(1, (("\ud800", "v"),)),)),
    "lone surrogate in value": LogGroup((Log(1, (("k", "\udfff"),)),)),
    "lone surrogate in topic": LogGroup((), topic="\ud800"),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("case", sorted(BAD_GROUPS))
def test_encoders_raise_encode_error_on_unencodable_groups(name: str, case: str) -> None:
    with pytest.raises(EncodeError) as info:
        ENCODERS[name](BAD_GROUPS[case])
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ProtocolError)


# --- decoder strictness -------------------------------------------------------------------

LOG_OK = ld(0x0A, b"\x08\x01" + content(b"k", b"v"))
TRAILER = b"\x1a\x00\x22\x00"

INVALID_BODIES = {
    "log without Time": ld(0x0A, content(b"k", b"v")),
    "content without Key": ld(0x0A, b"\x08\x01" + ld(0x12, ld(0x12, b"v"))),
    "content without Value": ld(0x0A, b"\x08\x01" + ld(0x12, ld(0x0A, b"k"))),
    "empty content": ld(0x0A, b"\x08\x01\x12\x00"),
    "tag without Value": ld(0x32, ld(0x0A, b"env")),
    "tag without Key": ld(0x32, ld(0x12, b"x")),
    "content key not UTF-8": ld(0x0A, b"\x08\x01" + content(b"\xff", b"v")),
    "topic not UTF-8": ld(0x1A, b"\xc3\x28"),
    "source not UTF-8": ld(0x22, b"\xed\xa0\x80"),  # encoded surrogate
    "tag value not UTF-8": ld(0x32, ld(0x0A, b"k") + ld(0x12, b"\xff")),
    "Time as length-delimited": ld(0x0A, ld(0x0A, b"x")),
    "Time above uint32": ld(0x0A, b"\x08" + varint(2**32)),
    "Contents as varint": ld(0x0A, b"\x08\x01\x10\x05"),
    "Time_ns as varint": ld(0x0A, b"\x08\x01\x20\x05"),
    "Logs as varint": b"\x08\x01",
    "Topic as fixed32": b"\x1d\x00\x00\x00\x00",
    "content Key as varint": ld(0x0A, b"\x08\x01" + ld(0x12, b"\x08\x01" + ld(0x12, b"v"))),
    "start-group wire type": b"\x0b" + LOG_OK,
    "end-group wire type in log": ld(0x0A, b"\x08\x01\x1c"),
    "wire type 6": b"\x0e\x00",
    "varint longer than 10 bytes": b"\x38" + b"\xff" * 11 + b"\x01",
    "log length past the end": b"\x0a\x10\x08\x01",
    "content length past the log": ld(0x0A, b"\x08\x01\x12\x09\x0a\x01k\x12\x01v"),
    "key length past the content": ld(0x0A, b"\x08\x01" + ld(0x12, b"\x0a\x05k\x12\x01v")),
    "value length past the content": ld(0x0A, b"\x08\x01" + ld(0x12, b"\x0a\x01k\x12\x05v")),
    "truncated Time_ns": ld(0x0A, b"\x08\x01\x25\x00\x00"),
    "truncated varint": b"\x0a\x80",
    "lone tag": b"\x0a",
    "content tag at the end of a log": ld(0x0A, b"\x08\x01\x12") + TRAILER,
    "random text": b"this is not a protobuf message at all",
}


@pytest.mark.parametrize("case", sorted(INVALID_BODIES))
def test_decoder_rejects_invalid_bodies(case: str) -> None:
    with pytest.raises(DecodeError):
        decode_log_group(INVALID_BODIES[case])


def test_every_strict_prefix_of_the_example_is_rejected_or_a_valid_prefix() -> None:
    raw = bytes.fromhex(EXAMPLE_HEX)
    # The Log ends at byte 42; cutting inside it (or inside a later field) must fail.
    for cut in range(1, len(raw)):
        prefix = raw[:cut]
        try:
            decoded = decode_log_group(prefix)
        except DecodeError:
            continue
        # Only field boundaries decode: after the Log, after Topic, after Source.
        assert cut in (42, 51, 61), cut
        assert decoded.logs == as_decoded(EXAMPLE).logs


def test_decoder_skips_unknown_and_deprecated_fields() -> None:
    extra = (
        ld(0x12, b"reserved")  # LogGroup field 2, Reserved
        + ld(0x2A, b"machine-uuid")  # LogGroup field 5, MachineUUID
        + b"\x38\x96\x01"  # field 7 varint
        + b"\x41"
        + b"\x00" * 8  # field 8 fixed64
        + b"\x4d"
        + b"\x00" * 4  # field 9 fixed32
    )
    log = ld(0x0A, b"\x08\x01" + b"\x18\x05" + content(b"k", b"v") + ld(0x2A, b"zz"))
    tag = ld(0x32, ld(0x0A, b"a") + b"\x18\x01" + ld(0x12, b"b"))
    decoded = decode_log_group(extra + log + tag + TRAILER)
    assert decoded == LogGroup((Log(1, (("k", b"v"),), None),), "", "", (("a", "b"),))


def test_decoder_accepts_value_before_key_and_non_canonical_tags() -> None:
    swapped = ld(0x12, ld(0x12, b"v") + ld(0x0A, b"k"))
    payload = ld(0x0A, b"k2") + ld(0x12, b"w")
    non_canonical = b"\x92\x00" + varint(len(payload)) + payload  # tag 0x12 in two bytes
    long_key = content(b"K" * 200, b"x")
    raw = ld(0x0A, b"\x08\x01" + swapped + non_canonical + long_key)
    decoded = decode_log_group(raw)
    assert decoded.logs[0].contents == (("k", b"v"), ("k2", b"w"), ("K" * 200, b"x"))


def test_decoder_last_scalar_wins_like_protobuf() -> None:
    raw = ld(0x0A, b"\x08\x01\x08\x02" + content(b"k", b"v")) + ld(0x1A, b"a") + ld(0x1A, b"b")
    decoded = decode_log_group(raw)
    assert decoded.logs[0].time == 2
    assert decoded.topic == "b"


def test_decoder_keeps_non_utf8_values_and_duplicate_keys() -> None:
    raw = ld(0x0A, b"\x08\x01" + content(b"a", b"\xff\x00bin") + content(b"a", b"2"))
    assert decode_log_group(raw).logs[0].contents == (("a", b"\xff\x00bin"), ("a", b"2"))


def test_decoder_accepts_bytes_like_and_rejects_text() -> None:
    raw = bytes.fromhex(EXAMPLE_HEX)
    assert decode_log_group(bytearray(raw)) == decode_log_group(memoryview(raw))
    with pytest.raises(TypeError):
        decode_log_group(EXAMPLE_HEX)  # type: ignore[arg-type]


def test_empty_body_is_an_empty_group() -> None:
    assert decode_log_group(b"") == LogGroup(())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_but_decode_error(raw: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_log_group(raw)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_whatever_we_accept_protobuf_parses_identically(raw: bytes) -> None:
    from aliyun.log.log_logs_raw_pb2 import LogGroupRaw
    from google.protobuf.message import DecodeError as PbDecodeError

    try:
        ours = decode_log_group(raw)
    except DecodeError:
        return
    message = LogGroupRaw()
    try:
        message.ParseFromString(raw)
    except PbDecodeError:  # pragma: no cover - would be a bug in our decoder
        pytest.fail(f"we accepted what protobuf rejects: {raw.hex()}")
    theirs = LogGroup(
        tuple(
            Log(
                m.Time,
                tuple((c.Key, c.Value) for c in m.Contents),
                m.Time_ns if m.HasField("Time_ns") else None,
            )
            for m in message.Logs
        ),
        message.Topic,
        message.Source,
        tuple((t.Key, t.Value) for t in message.LogTags),
    )
    assert ours == theirs


@settings(max_examples=100, deadline=None)
@given(groups, st.data())
def test_any_truncation_of_a_valid_body_is_detected_or_a_field_boundary(
    group: LogGroup, data: st.DataObject
) -> None:
    raw = ENCODERS["python"](group)
    cut = data.draw(st.integers(0, max(0, len(raw) - 1)))
    try:
        decoded = decode_log_group(raw[:cut])
    except DecodeError:
        return
    # A cut on a field boundary decodes to a prefix of the logs.
    assert decoded.logs == as_decoded(group).logs[: len(decoded.logs)]
