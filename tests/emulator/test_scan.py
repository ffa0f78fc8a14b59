"""The fast (upb) scan never accepts a body the decoder rejects, and agrees on the stats."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yai_spool.emulator.scan import FAST_SCAN, scan_log_group, stats_of
from yai_spool.sls.encoding import decode_log_group, encode_log_group
from yai_spool.sls.errors import DecodeError
from yai_spool.sls.model import Log, LogGroup

BASE = encode_log_group(
    LogGroup(
        (
            Log(1_767_225_600, (("level", b"INFO"), ("msg", b"hello \xff")), 7),
            Log(4_000_000_000, (("msg", b""),)),
        ),
        topic="t",
        source="s",
        tags=(("k", "v"),),
    )
)


def test_the_fast_path_is_available_and_taken() -> None:
    assert FAST_SCAN  # protobuf (upb) is a test dependency
    stats, group = scan_log_group(BASE, value_limit=1 << 20)
    assert group is None  # no LogGroup was materialised
    expected = stats_of(decode_log_group(BASE))
    assert stats.keys == expected.keys == frozenset({"level", "msg"})
    assert (stats.log_count, stats.topic, stats.source, stats.max_time_ns) == (2, "t", "s", 7)
    assert (stats.min_time, stats.max_time) == (1_767_225_600, 4_000_000_000)


def _mutations() -> st.SearchStrategy[bytes]:
    flip = st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255)).map(
        lambda t: BASE[: t[0]] + bytes([t[1]]) + BASE[t[0] + 1 :]
    )
    cut = st.integers(0, len(BASE) - 1).map(lambda n: BASE[:n])
    insert = st.tuples(st.integers(0, len(BASE)), st.binary(min_size=1, max_size=4)).map(
        lambda t: BASE[: t[0]] + t[1] + BASE[t[0] :]
    )
    return st.one_of(flip, cut, insert, st.binary(max_size=64))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_scan_agrees_with_the_decoder(raw: bytes) -> None:
    try:
        decoded = decode_log_group(raw)
    except DecodeError:
        with pytest.raises(DecodeError):
            scan_log_group(raw, value_limit=1 << 20)
        return
    stats, _ = scan_log_group(raw, value_limit=1 << 20)
    expected = stats_of(decoded)
    assert stats.log_count == expected.log_count
    assert stats.keys == expected.keys
    assert (stats.topic, stats.source) == (expected.topic, expected.source)
    assert stats.max_time_ns == expected.max_time_ns
    assert (stats.min_time, stats.max_time) == (expected.min_time, expected.max_time)


def test_without_upb_the_decoder_path_gives_the_same_stats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from yai_spool.emulator import scan

    fast, _ = scan.scan_log_group(BASE, value_limit=1 << 20)
    monkeypatch.setattr(scan, "_CLASSES", None)
    slow, group = scan.scan_log_group(BASE, value_limit=1 << 20)
    assert group == decode_log_group(BASE)
    assert slow.keys == fast.keys
    assert (slow.log_count, slow.max_time_ns, slow.max_time) == (2, 7, 4_000_000_000)
    assert slow.max_value_bytes == len(b"hello \xff")
