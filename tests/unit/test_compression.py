"""Compression framing (lz4 raw block, zstd frame, zlib deflate) and bounded decompression."""

from __future__ import annotations

import threading
import zlib

import lz4.block
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from yai_spool.sls import compression
from yai_spool.sls.compression import Compression, compress, decompress, parse_compress_type
from yai_spool.sls.errors import CompressionError, ProtocolError

EXAMPLE_RAW = bytes.fromhex(
    "0a280880f2d6ca06120d0a056c6576656c1204494e464f120c0a036d7367120568656c6c6f2515cd5b07"
    "1a076d79746f706963220831302e302e302e31320b0a03656e76120474657374"
)
ALL = list(Compression)
COMPRESSED = [Compression.LZ4, Compression.ZSTD, Compression.DEFLATE]
LOGLIKE = b"2026-01-01 level=INFO logger=app.api msg=request served in 12ms\n" * 200


def test_header_values() -> None:
    assert Compression.LZ4.header_value == "lz4"
    assert Compression.ZSTD.header_value == "zstd"
    assert Compression.DEFLATE.header_value == "deflate"
    assert Compression.NONE.header_value is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, Compression.NONE),
        ("", Compression.NONE),
        ("lz4", Compression.LZ4),
        ("LZ4", Compression.LZ4),
        ("zstd", Compression.ZSTD),
        (" deflate ", Compression.DEFLATE),
    ],
)
def test_parse_compress_type(header: str | None, expected: Compression) -> None:
    assert parse_compress_type(header) is expected


@pytest.mark.parametrize("header", ["gzip", "snappy", "none", "lz4hc", "zstd;level=3"])
def test_parse_compress_type_rejects_unknown_values(header: str) -> None:
    with pytest.raises(ValueError, match=r"unsupported|not a wire value"):
        parse_compress_type(header)


def test_lz4_is_a_raw_block_without_size_prefix_like_the_sdk() -> None:
    body = compress(Compression.LZ4, EXAMPLE_RAW)
    # §3.3: a literal-only block, token f0 + length byte 3b, then the 74 raw bytes.
    assert body == bytes.fromhex("f03b") + EXAMPLE_RAW
    assert len(body) == 76
    # The SDK computes lz4.block.compress(data)[4:]: the same block minus the LE size prefix.
    assert body == lz4.block.compress(EXAMPLE_RAW)[4:]


def test_zstd_is_one_level_1_frame_with_content_size() -> None:
    body = compress(Compression.ZSTD, LOGLIKE)
    assert body[:4] == b"\x28\xb5\x2f\xfd"
    assert zstandard.frame_content_size(body) == len(LOGLIKE)
    assert body == zstandard.ZstdCompressor(level=1, write_content_size=True).compress(LOGLIKE)


def test_deflate_is_zlib_wrapped() -> None:
    body = compress(Compression.DEFLATE, LOGLIKE)
    assert body[0] == 0x78  # RFC 1950 header, as java.util.zip.Deflater writes
    assert zlib.decompress(body) == LOGLIKE


def test_none_is_identity() -> None:
    assert compress(Compression.NONE, LOGLIKE) is LOGLIKE
    assert decompress(Compression.NONE, LOGLIKE, len(LOGLIKE)) == LOGLIKE


@settings(max_examples=60, deadline=None)
@given(raw=st.one_of(st.binary(max_size=3000), st.just(b""), st.just(LOGLIKE)))
def test_round_trip_every_codec(raw: bytes) -> None:
    for kind in ALL:
        assert decompress(kind, compress(kind, raw), len(raw)) == raw


@pytest.mark.parametrize("kind", ALL)
@pytest.mark.parametrize("delta", [-1, 1, 1000])
def test_size_mismatch_is_an_error(kind: Compression, delta: int) -> None:
    body = compress(kind, LOGLIKE)
    with pytest.raises(CompressionError):
        decompress(kind, body, len(LOGLIKE) + delta)


@pytest.mark.parametrize("kind", COMPRESSED)
def test_garbage_and_truncation_are_errors(kind: Compression) -> None:
    body = compress(kind, LOGLIKE)
    for bad in (b"", b"\x00garbage" * 3, body[: len(body) // 2], body[:-1]):
        with pytest.raises(CompressionError):
            decompress(kind, bad, len(LOGLIKE))


@pytest.mark.parametrize("kind", [Compression.ZSTD, Compression.DEFLATE])
def test_trailing_data_is_an_error(kind: Compression) -> None:
    body = compress(kind, LOGLIKE)
    with pytest.raises(CompressionError):
        decompress(kind, body + b"xx", len(LOGLIKE))


def test_second_zstd_frame_is_an_error() -> None:
    body = compress(Compression.ZSTD, b"abc")
    with pytest.raises(CompressionError):
        decompress(Compression.ZSTD, body + body, 6)


@pytest.mark.parametrize("kind", COMPRESSED)
def test_bombs_are_refused_without_inflating(kind: Compression) -> None:
    bomb = compress(kind, b"\x00" * 20_000_000)
    assert len(bomb) < 200_000
    with pytest.raises(CompressionError):
        decompress(kind, bomb, 1000)


def test_zstd_declared_size_is_checked_before_decompressing() -> None:
    body = compress(Compression.ZSTD, LOGLIKE)
    with pytest.raises(CompressionError, match="declares"):
        decompress(Compression.ZSTD, body, 10)


def test_zstd_frame_without_content_size_is_bounded_by_raw_size() -> None:
    body = zstandard.ZstdCompressor(level=1, write_content_size=False).compress(LOGLIKE)
    assert zstandard.frame_content_size(body) == -1
    assert decompress(Compression.ZSTD, body, len(LOGLIKE)) == LOGLIKE
    with pytest.raises(CompressionError):
        decompress(Compression.ZSTD, body, len(LOGLIKE) - 1)
    with pytest.raises(CompressionError):
        decompress(Compression.ZSTD, body, 0)


def test_negative_raw_size_is_an_error() -> None:
    with pytest.raises(CompressionError):
        decompress(Compression.LZ4, compress(Compression.LZ4, b"x"), -1)


def test_compression_error_is_a_value_error_and_a_protocol_error() -> None:
    with pytest.raises(ValueError, match="corrupt lz4") as info:
        decompress(Compression.LZ4, b"\xff\xff\xff", 10)
    assert isinstance(info.value, ProtocolError)


def test_zstd_contexts_are_per_thread_and_correct_under_concurrency() -> None:
    main_ctx = compression._zstd_compressor()
    assert compression._zstd_compressor() is main_ctx
    payloads = [LOGLIKE + bytes([i]) * (i * 100) for i in range(8)]
    errors: list[BaseException] = []
    contexts: list[object] = []
    start = threading.Barrier(len(payloads))

    def work(raw: bytes) -> None:
        try:
            contexts.append(compression._zstd_compressor())
            start.wait(timeout=10)
            for _ in range(30):
                body = compress(Compression.ZSTD, raw)
                assert decompress(Compression.ZSTD, body, len(raw)) == raw
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(raw,)) for raw in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len({id(ctx) for ctx in contexts}) == len(payloads)
    assert main_ctx not in contexts
