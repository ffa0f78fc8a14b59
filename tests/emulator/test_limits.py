"""Body checks and content limits, each with its documented error code (putlogs.py order)."""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import pytest
from emulator_support import LOGSTORE, PROJECT, group_of, prepare, raw_of, send, unsigned

from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.sls.compression import Compression
from yai_spool.sls.model import Log, LogGroup


def post(emu: Emulator, raw: bytes, **kwargs: object) -> tuple[int, str | None]:
    headers, body = unsigned(raw, **kwargs)  # type: ignore[arg-type]
    answer = send(emu, headers=headers, body=body)
    return answer.status, answer.code


@pytest.fixture
def small_emu(tmp_path: Path) -> object:
    config = EmulatorConfig(
        verify_signatures=False,
        max_body_bytes=64 * 1024,
        max_logs_per_request=10,
        max_value_bytes=1000,
        max_key_bytes=16,
        max_topic_bytes=8,
        max_source_bytes=8,
        db_path=str(tmp_path / "small.sqlite3"),
    )
    with Emulator(config) as emu:
        yield emu


@pytest.mark.parametrize("compression", list(Compression))
def test_every_compression_round_trips_byte_exact(
    open_emu: Emulator, compression: Compression
) -> None:
    group = LogGroup(
        (
            Log(
                1_767_225_600, (("bin", b"\xff\x00 not utf-8 \xc3"), ("text", "héllo".encode())), 5
            ),
            Log(1_767_225_601, (("bin", b""), ("dup", b"1"), ("dup", b"2"))),
        ),
        topic="tópic",
        source="10.0.0.1",
        tags=(("env", "test"), ("__pack_id__", "ABC-1")),
    )
    assert post(open_emu, raw_of(group), compression=compression) == (200, None)
    (batch,) = open_emu.raw_batches(PROJECT, LOGSTORE)
    assert batch[1] == raw_of(group)
    first, second = open_emu.logs(PROJECT, LOGSTORE)
    assert first.contents == (("bin", b"\xff\x00 not utf-8 \xc3"), ("text", "héllo".encode()))
    assert (first.time, first.time_ns, first.topic, first.source) == (
        1_767_225_600,
        5,
        "tópic",
        "10.0.0.1",
    )
    assert first.tags == (("env", "test"), ("__pack_id__", "ABC-1"))
    assert second.time_ns is None
    assert second.contents == (("bin", b""), ("dup", b"1"), ("dup", b"2"))
    assert open_emu.requests()[0].compress_type == compression.header_value


def test_missing_raw_size(open_emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    del headers["x-log-bodyrawsize"]
    answer = send(open_emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "MissingBodyRawSize")


@pytest.mark.parametrize("value", ["-1", "ten", "1.5"])
def test_invalid_raw_size(open_emu: Emulator, value: str) -> None:
    headers, body = unsigned(raw_of(group_of("x")))
    headers["x-log-bodyrawsize"] = value
    answer = send(open_emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "InvalidBodyRawSize")


def test_raw_size_not_matching_the_body(open_emu: Emulator) -> None:
    raw = raw_of(group_of("x"))
    for compression in Compression:
        headers, body = unsigned(raw, compression=compression)
        headers["x-log-bodyrawsize"] = str(len(raw) + 1)
        answer = send(open_emu, headers=headers, body=body)
        assert (answer.status, answer.code) == (400, "PostBodyInvalid"), compression


@pytest.mark.parametrize("value", ["snappy", "none", "brotli"])
def test_unknown_compress_type(open_emu: Emulator, value: str) -> None:
    assert post(
        open_emu,
        raw_of(group_of("x")),
        compression=Compression.NONE,
        **{"x-log-compresstype": value},
    ) == (400, "InvalidCompressType")


def test_gzip_is_the_gateways_name_for_zlib_by_default(open_emu: Emulator) -> None:
    """@alicloud/gateway-sls(-util) sends zlib (RFC 1950) bytes labelled ``gzip``."""
    raw = raw_of(group_of("gzip label, zlib bytes"))
    assert post(open_emu, raw, body=zlib.compress(raw), **{"x-log-compresstype": "gzip"}) == (
        200,
        None,
    )
    (batch,) = open_emu.raw_batches(PROJECT, LOGSTORE)
    assert batch[1] == raw
    assert open_emu.requests()[0].compress_type == "gzip"  # recorded as sent


def test_gzip_framed_bytes_are_not_what_the_label_means(open_emu: Emulator) -> None:
    """A real RFC 1952 gzip member is not what the gateways send under ``gzip``: refused."""
    import gzip

    raw = raw_of(group_of("x"))
    body = gzip.compress(raw)
    assert post(open_emu, raw, body=body, **{"x-log-compresstype": "gzip"}) == (
        400,
        "PostBodyInvalid",
    )


def test_gzip_can_be_refused_as_the_docs_list_only_lz4_and_deflate(tmp_path: Path) -> None:
    config = EmulatorConfig(
        verify_signatures=False, gzip_compress_type="reject", db_path=str(tmp_path / "g.sqlite3")
    )
    raw = raw_of(group_of("x"))
    with Emulator(config) as emu:
        assert post(emu, raw, body=zlib.compress(raw), **{"x-log-compresstype": "gzip"}) == (
            400,
            "InvalidCompressType",
        )
        # deflate, the documented name for the same bytes, still works.
        assert post(emu, raw, compression=Compression.DEFLATE) == (200, None)


def _without_content_type(raw: bytes, **kwargs: object) -> tuple[dict[str, str], bytes]:
    headers, body = unsigned(raw, **kwargs)  # type: ignore[arg-type]
    del headers["Content-Type"]
    return headers, body


def test_missing_content_type_is_refused_by_default(open_emu: Emulator) -> None:
    headers, body = _without_content_type(raw_of(group_of("x")))
    answer = send(open_emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "MissingContentType")
    assert "Content-Type" in answer.message
    assert open_emu.count(PROJECT, LOGSTORE) == 0


def test_missing_content_type_with_an_empty_body_is_fine(open_emu: Emulator) -> None:
    """The DOC rule is "when body is not empty": an empty LogGroup needs no Content-Type."""
    headers, body = _without_content_type(b"", compression=Compression.NONE)
    assert body == b""
    assert send(open_emu, headers=headers, body=body).status == 200


def test_missing_content_type_can_be_accepted(tmp_path: Path) -> None:
    config = EmulatorConfig(
        verify_signatures=False, missing_content_type="accept", db_path=str(tmp_path / "c.sqlite3")
    )
    with Emulator(config) as emu:
        headers, body = _without_content_type(raw_of(group_of("no content type")))
        assert send(emu, headers=headers, body=body).status == 200
        assert emu.count(PROJECT, LOGSTORE) == 1


@pytest.mark.parametrize("compression", [Compression.LZ4, Compression.ZSTD, Compression.DEFLATE])
def test_corrupt_compressed_body(open_emu: Emulator, compression: Compression) -> None:
    raw = raw_of(group_of("x" * 100))
    assert post(open_emu, raw, compression=compression, body=b"\x00garbage" * 4) == (
        400,
        "PostBodyInvalid",
    )


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xff\xff", b"\x0a\x05\x08", b"\x0a\x02\x12\x00", zlib.compress(b"x" * 50)],
    ids=["garbage", "truncated", "log-without-time", "not-protobuf"],
)
def test_body_that_is_not_a_log_group(open_emu: Emulator, raw: bytes) -> None:
    assert post(open_emu, raw, compression=Compression.NONE) == (400, "PostBodyInvalid")


def test_raw_body_over_the_limit(small_emu: Emulator) -> None:
    group = group_of(*["v" * 500 for _ in range(10)], key="k")
    raw = raw_of(group) + raw_of(group_of(*["v" * 900] * 80))
    assert len(raw) > 64 * 1024
    assert post(small_emu, raw) == (413, "PostBodyTooLarge")


def test_wire_body_far_over_the_limit_is_discarded_unread(small_emu: Emulator) -> None:
    # Content-Length beyond the wire bound: answered without buffering the body.
    huge = b"\x00" * (64 * 1024 + 2 * 1024 * 1024)
    answer = send(small_emu, headers=unsigned(b"")[0], body=huge)
    assert (answer.status, answer.code) == (413, "PostBodyTooLarge")
    assert answer.headers["connection"] == "close"


def test_too_many_logs(small_emu: Emulator) -> None:
    assert post(small_emu, raw_of(group_of(*["x"] * 10))) == (200, None)
    assert post(small_emu, raw_of(group_of(*["x"] * 11))) == (400, "InvalidLogSize")


def test_value_size_limit(small_emu: Emulator) -> None:
    # Small bodies: an oversized value is impossible, the scan skips measuring.
    assert post(small_emu, raw_of(group_of("v" * 1000))) == (200, None)
    assert post(small_emu, raw_of(group_of("v" * 1001))) == (400, "InvalidValue")


def test_value_size_limit_in_a_large_body(tmp_path: Path) -> None:
    config = EmulatorConfig(
        verify_signatures=False, max_value_bytes=100, db_path=str(tmp_path / "v.sqlite3")
    )
    with Emulator(config) as emu:
        ok = group_of(*["v" * 100] * 20)
        assert post(emu, raw_of(ok)) == (200, None)
        bad = group_of(*(["v" * 100] * 20 + ["w" * 101]))
        assert post(emu, raw_of(bad)) == (400, "InvalidValue")


@pytest.mark.parametrize(
    ("key", "code"),
    [
        ("", "InvalidKey"),
        ("k" * 17, "InvalidKey"),
        ("9starts_with_digit", "InvalidKey"),
        ("has space", "InvalidKey"),
        ("__time__", "ParameterInvalid"),
        ("__source__", "ParameterInvalid"),
        ("__topic__", "ParameterInvalid"),
        ("__partition_time__", "ParameterInvalid"),
        ("_extract_others_", "ParameterInvalid"),
        ("__extract_others__", "ParameterInvalid"),
        ("__tag__:host", "ParameterInvalid"),
    ],
)
def test_content_key_rules(small_emu: Emulator, key: str, code: str) -> None:
    assert post(small_emu, raw_of(group_of("x", key=key))) == (400, code)
    assert small_emu.count(PROJECT, LOGSTORE) == 0


def test_good_keys_and_pattern_can_be_disabled(small_emu: Emulator, tmp_path: Path) -> None:
    assert post(small_emu, raw_of(group_of("x", key="k" * 16))) == (200, None)
    assert post(small_emu, raw_of(group_of("x", key="_private"))) == (200, None)
    config = EmulatorConfig(
        verify_signatures=False, key_pattern=None, db_path=str(tmp_path / "any.sqlite3")
    )
    with Emulator(config) as emu:
        assert post(emu, raw_of(group_of("x", key="http.method"))) == (200, None)


def test_topic_and_source_limits(small_emu: Emulator) -> None:
    assert post(small_emu, raw_of(group_of("x", topic="t" * 8, source="s" * 8))) == (200, None)
    assert post(small_emu, raw_of(group_of("x", topic="t" * 9))) == (400, "InvalidTopic")
    assert post(small_emu, raw_of(group_of("x", source="s" * 9))) == (400, "InvalidSource")


def test_time_ns_range_and_optional_log_time_window(open_emu: Emulator, tmp_path: Path) -> None:
    now = int(time.time())
    bad_ns = LogGroup((Log(now, (("k", b"v"),), 1_000_000_000),))
    assert post(open_emu, raw_of(bad_ns)) == (400, "InvalidTimestamp")
    old = LogGroup((Log(now - 10 * 86400, (("k", b"v"),)),))
    assert post(open_emu, raw_of(old)) == (200, None)  # no window by default
    config = EmulatorConfig(
        verify_signatures=False, max_log_time_skew_seconds=3600, db_path=str(tmp_path / "w.sqlite3")
    )
    with Emulator(config) as emu:
        assert post(emu, raw_of(old)) == (400, "InvalidTimestamp")


def test_configured_projects_and_logstores(tmp_path: Path) -> None:
    config = EmulatorConfig(
        verify_signatures=False,
        projects={PROJECT: frozenset({LOGSTORE}), "any-store": frozenset()},
        db_path=str(tmp_path / "p.sqlite3"),
    )
    with Emulator(config) as emu:
        raw = raw_of(group_of("x"))
        assert post(emu, raw) == (200, None)
        assert post(emu, raw, host="nope.127.0.0.1") == (404, "ProjectNotExist")
        headers, body = unsigned(raw)
        answer = send(emu, headers=headers, body=body, target="/logstores/other/shards/lb")
        assert (answer.status, answer.code) == (404, "LogStoreNotExist")
        headers, body = unsigned(raw, host="any-store.127.0.0.1")
        assert send(emu, headers=headers, body=body, target="/logstores/x/shards/lb").status == 200


def test_status_overrides(tmp_path: Path) -> None:
    config = EmulatorConfig(
        verify_signatures=False,
        status_overrides={"PostBodyInvalid": 422},
        db_path=str(tmp_path / "o.sqlite3"),
    )
    with Emulator(config) as emu:
        assert post(emu, b"\xff", compression=Compression.NONE) == (422, "PostBodyInvalid")


def test_error_answers_are_recorded_with_their_codes(open_emu: Emulator) -> None:
    post(open_emu, b"\xff", compression=Compression.NONE)
    send(open_emu, prepare(open_emu))
    first, second = open_emu.requests()
    assert (first.status, first.error_code, first.outcome) == (400, "PostBodyInvalid", "rejected")
    assert (second.status, second.error_code, second.outcome) == (200, None, "accepted")
    counters = open_emu.counters()
    assert counters.by_outcome == {"rejected": 1, "accepted": 1}
    assert counters.by_error_code == {"PostBodyInvalid": 1}
    assert counters.accepted_logs == 1


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="port"):
        EmulatorConfig(port=70000)
    with pytest.raises(ValueError, match="skew_error_code"):
        EmulatorConfig(skew_error_code="Skewed")
    with pytest.raises(ValueError, match="max_logs_per_request"):
        EmulatorConfig(max_logs_per_request=0)
    with pytest.raises(ValueError, match="key_pattern"):
        EmulatorConfig(key_pattern="(")
    keys = {"a": "b"}
    config = EmulatorConfig(access_keys=keys)
    keys["c"] = "d"
    assert dict(config.access_keys) == {"a": "b"}  # the config kept its own copy
