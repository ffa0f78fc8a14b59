"""Request-body compression for PutLogs (``x-log-compresstype``), both directions.

Owns the framing of each codec exactly as the official clients put it on the wire
(sls-protocol.md §5):

- ``lz4``: a raw LZ4 *block*, no frame and no 4-byte size prefix
  (``lz4.block.compress(raw, store_size=False)``); the size travels in ``x-log-bodyrawsize``.
- ``zstd``: one standard zstd frame, level 1, with the content size written in the header.
- ``deflate``: zlib-wrapped deflate (RFC 1950), as the Java SDK sends it.
- ``none``: the raw protobuf; the header ``x-log-compresstype`` is absent.

Invariants of ``decompress``:

- It returns exactly ``raw_size`` bytes or raises ``CompressionError``; trailing garbage, a
  truncated body, a second frame or a size mismatch are all errors.
- It never allocates more than ``raw_size`` (+1) bytes of output, whatever the body claims, so
  a hostile body cannot make the emulator allocate gigabytes: the caller bounds ``raw_size``.

The codecs (``lz4``, ``zstandard``) are imported on the first body compressed or
decompressed, on the shipping side: a process that only logs (``Compression`` is validated
when a handler is built) never pays their import.
"""

from __future__ import annotations

import threading
import zlib
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from yai_spool.sls.errors import CompressionError

if TYPE_CHECKING:
    import zstandard

__all__ = ["Compression", "compress", "decompress", "parse_compress_type"]

ZSTD_LEVEL = 1  # what the Rust producer sends: the best ratio per CPU second for log text.


class Compression(StrEnum):
    """Body compression; the value is the ``x-log-compresstype`` header value."""

    LZ4 = "lz4"
    ZSTD = "zstd"
    DEFLATE = "deflate"
    NONE = "none"

    @property
    def header_value(self) -> str | None:
        """The ``x-log-compresstype`` header value, or ``None`` when the header is absent."""
        return None if self is Compression.NONE else self.value


def parse_compress_type(header: str | None) -> Compression:
    """Map an ``x-log-compresstype`` header to ``Compression``.

    ``None`` or ``""`` (header absent) means ``NONE``. Matching is case-insensitive.

    Raises:
        ValueError: for any other value (the server answers ``InvalidCompressType``).
    """
    if not header:
        return Compression.NONE
    value = header.strip().lower()
    if value == "none":
        # "none" is our enum's spelling, but no client sends it: a server must not accept it.
        raise ValueError("x-log-compresstype 'none' is not a wire value; omit the header")
    try:
        return Compression(value)
    except ValueError:
        raise ValueError(f"x-log-compresstype {header!r} is unsupported") from None


# zstandard's ZstdCompressor/ZstdDecompressor objects wrap one ZSTD_CCtx/ZSTD_DCtx each; the
# library documents that an instance must not be used by two threads at the same time (the C
# context holds per-operation state). Creating one per call costs ~10 us plus an allocation of
# the context's work memory, which matters at thousands of requests per second. So each thread
# keeps its own pair.
_zstd_local = threading.local()


def _lz4() -> Any:
    # lz4 ships no type information (see pyproject's mypy override): its results are Any,
    # and the wrappers below give them their documented types.
    import lz4.block  # noqa: PLC0415 - shipping side only (see the module docstring)

    return lz4.block


def _zstd_compressor() -> zstandard.ZstdCompressor:
    cctx: zstandard.ZstdCompressor | None = getattr(_zstd_local, "cctx", None)
    if cctx is None:
        import zstandard  # noqa: PLC0415 - shipping side only (see the module docstring)

        cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_content_size=True)
        _zstd_local.cctx = cctx
    return cctx


def _zstd_decompressor() -> zstandard.ZstdDecompressor:
    dctx: zstandard.ZstdDecompressor | None = getattr(_zstd_local, "dctx", None)
    if dctx is None:
        import zstandard  # noqa: PLC0415 - shipping side only (see the module docstring)

        dctx = zstandard.ZstdDecompressor()
        _zstd_local.dctx = dctx
    return dctx


def compress(kind: Compression, raw: bytes) -> bytes:
    """Compress an encoded LogGroup for the wire. ``NONE`` returns ``raw`` unchanged."""
    if kind is Compression.LZ4:
        block: bytes = _lz4().compress(raw, store_size=False)
        return block
    if kind is Compression.ZSTD:
        return _zstd_compressor().compress(raw)
    if kind is Compression.DEFLATE:
        return zlib.compress(raw)
    if kind is Compression.NONE:
        return raw if type(raw) is bytes else bytes(raw)
    raise ValueError(f"unknown compression {kind!r}")


def decompress(kind: Compression, body: bytes, raw_size: int) -> bytes:
    """Decompress a request body to exactly ``raw_size`` bytes.

    Args:
        kind: the codec named by ``x-log-compresstype``.
        body: the bytes received.
        raw_size: ``x-log-bodyrawsize``; the caller must have bounded it already.

    Raises:
        CompressionError: corrupt body, trailing data, or output length != ``raw_size``.
    """
    if raw_size < 0:
        raise CompressionError(f"negative raw size {raw_size}")
    if kind is Compression.NONE:
        out = body if type(body) is bytes else bytes(body)
    elif kind is Compression.LZ4:
        out = _lz4_decompress(body, raw_size)
    elif kind is Compression.ZSTD:
        out = _zstd_decompress(body, raw_size)
    elif kind is Compression.DEFLATE:
        out = _deflate_decompress(body, raw_size)
    else:
        raise CompressionError(f"unknown compression {kind!r}")
    if len(out) != raw_size:
        raise CompressionError(
            f"{kind.value} body decompressed to {len(out)} bytes, x-log-bodyrawsize says {raw_size}"
        )
    return out


def _lz4_decompress(body: bytes, raw_size: int) -> bytes:
    # The output buffer is exactly raw_size; a block that needs more raises LZ4BlockError. A block
    # that needs less returns short, which the caller's length check catches.
    block = _lz4()
    try:
        out: bytes = block.decompress(body, uncompressed_size=raw_size)
    except (block.LZ4BlockError, ValueError, MemoryError) as exc:
        raise CompressionError(f"corrupt lz4 block: {exc}") from exc
    return out


def _zstd_decompress(body: bytes, raw_size: int) -> bytes:
    import zstandard  # noqa: PLC0415 - shipping side only (see the module docstring)

    try:
        declared = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        raise CompressionError(f"corrupt zstd frame header: {exc}") from exc
    # When the frame declares its content size, zstandard allocates that size and ignores
    # max_output_size; so refuse a mismatching declaration before any allocation happens.
    if declared not in (-1, raw_size):
        raise CompressionError(f"zstd frame declares {declared} bytes, expected {raw_size}")
    try:
        # max_output_size=0 would mean "unlimited"; +1 keeps the bound and lets an oversized
        # frame without a declared size fail instead of being cut exactly at raw_size.
        return _zstd_decompressor().decompress(
            body, max_output_size=raw_size + 1, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise CompressionError(f"corrupt zstd frame: {exc}") from exc


def _deflate_decompress(body: bytes, raw_size: int) -> bytes:
    dobj = zlib.decompressobj()
    try:
        # max_length=raw_size+1 bounds the output (0 would mean unlimited) and still exposes
        # an oversized stream through the length check.
        out = dobj.decompress(body, raw_size + 1)
    except zlib.error as exc:
        raise CompressionError(f"corrupt deflate stream: {exc}") from exc
    if not dobj.eof:
        raise CompressionError("deflate stream is truncated or longer than x-log-bodyrawsize")
    if dobj.unused_data:
        raise CompressionError(f"{len(dobj.unused_data)} bytes of trailing data after deflate")
    return out
