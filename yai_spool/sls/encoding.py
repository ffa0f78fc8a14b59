"""Protobuf encoding and decoding of the SLS ``LogGroup`` (the PutLogs body before compression).

Schema (proto2, sls-protocol.md §4)::

    Log      { uint32 Time = 1; repeated Content Contents = 2; fixed32 Time_ns = 4; }
    Content  { string Key = 1; bytes Value = 2; }          (the SDK's "Raw" variant)
    LogTag   { string Key = 1; string Value = 2; }
    LogGroup { repeated Log Logs = 1; string Topic = 3; string Source = 4;
               repeated LogTag LogTags = 6; }

Invariants:

- Every encoder in ``ENCODERS`` produces byte-identical output for the same ``LogGroup``
  (fields in field-number order, Topic and Source always written even when empty, Time_ns
  written iff not ``None``), so signatures and Content-MD5 never depend on the encoder.
- Encoders raise ``EncodeError`` (a ``ValueError``) for a time outside uint32, a time_ns
  outside fixed32, a value that is neither str nor bytes, or a string that is not encodable
  as UTF-8 (lone surrogates).
- ``decode_log_group`` returns ``bytes`` values and ``str`` keys/topic/source/tags; it raises
  ``DecodeError`` (a ``ValueError``) on garbage, truncation, wrong wire types, a missing
  required field (Log.Time, Content.Key, Content.Value, LogTag.Key, LogTag.Value), invalid
  UTF-8 in a string field, or a Time above uint32. Unknown fields are skipped (as protobuf
  does); the deprecated string fields Reserved (2) and MachineUUID (5) are skipped too.

Which encoder is the default was decided by ``benchmarks/bench_encode.py``: 4096 logs x 12
fields, 333 B per record encoded, median of 7 interleaved repetitions, CPython 3.11.7 on a
shared 2-core x86_64 VM (absolute numbers are noisy there; the ranking was stable over runs)::

    records/s        encode   +lz4+V1   +zstd+V1   +none+V1
    python          275,564   230,090    222,838    235,596
    protobuf (upb)   94,789    87,760     79,410     89,038
    fastpb           75,998    64,391     81,832     72,092

    decode records/s: python 84,272; protobuf (upb parse + building the LogGroup) 92,723

``fastpb`` is Rust, but it needs a dict per Content built in Python first, which costs more than
the whole cached pure-Python encoder; upb is similar. Even with every value unique (no cache
hits) the Python encoder measured 111k records/s against 71k (protobuf) and 84k (fastpb). So
``encode_log_group`` is the pure-Python encoder (2.9x the next one on logging data). For
decoding, upb plus conversion is ~10% faster, but it checks neither required fields nor UTF-8
in proto2 string fields (measured: it returns bytes for an invalid Topic and Time=0 for a Log
without Time), and protobuf is not a runtime dependency; so the strict pure-Python decoder is
used. Neither needs protobuf or the SDK at run time.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from yai_spool.sls.errors import DecodeError, EncodeError
from yai_spool.sls.model import Log, LogGroup

__all__ = [
    "ENCODERS",
    "KeyHeads",
    "content",
    "decode_log_field",
    "decode_log_group",
    "encode_contents",
    "encode_entries",
    "encode_entry_log",
    "encode_fastpb",
    "encode_log_group",
    "encode_protobuf",
    "encode_python",
    "join_logs",
    "key_heads",
    "log_field",
    "log_field_of",
]

_UINT32_MAX = 0xFFFFFFFF
_MAX_FIELD_NUMBER = 2**29 - 1  # protobuf's limit; larger tags are not valid messages

# Single-byte varints are by far the most common (keys, short values, lengths < 128).
_VARINT1: tuple[bytes, ...] = tuple(bytes((i,)) for i in range(128))
# b"\x12" + one-byte length: the header of a Content whose encoding is shorter than 128 bytes.
_CONTENT_HDR1: tuple[bytes, ...] = tuple(bytes((0x12, i)) for i in range(128))

_pack_fixed32 = struct.Struct("<I").pack
# Tag 0x25 (Time_ns, fixed32) and its value in one call: one bytes object per Log, no concat.
_pack_time_ns = struct.Struct("<BI").pack


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _VARINT1[value]
    if value < 0x4000:  # two bytes: the length of almost every Log (128 B .. 16 KiB)
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# Three caches make the pure-Python encoder fast on logging data, where keys come from a small
# set and most values (level, logger, module, host, ...) repeat. All are plain dicts: get/set
# are atomic under the GIL, so concurrent encoders at worst compute the same bytes twice; each is
# cleared when it reaches its cap so arbitrary input cannot grow memory without bound.
#
# _HEADS: key -> (heads, prefix). prefix = b"\x0a" + varint(len) + utf8(key) + b"\x12" (a
# Content's bytes before the value length); heads[n] (filled lazily) = the whole Content
# header + prefix + varint(n) for a value of n < 128 bytes, i.e. everything but the value.
_HEADS: dict[str, tuple[list[bytes | None], bytes]] = {}
_HEADS_MAX = 1024
# _PIECES: (key, value) -> the complete encoded Content, for short values only.
_PIECES: dict[tuple[str, str | bytes], bytes] = {}
_PIECES_MAX = 4096
_PIECE_MAX_VALUE = 24  # longer values are rarely repeated (messages, ids)
# _TRAILERS: (topic, source, tags) -> encoded fields 3, 4 and 6, constant per destination.
_TRAILERS: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}
_TRAILERS_MAX = 256
# _TIME_HEADS: unix second -> b"\x08" + varint(second): few distinct seconds per batch.
_TIME_HEADS: dict[int, bytes] = {}
_TIME_HEADS_MAX = 64


def _key_entry(key: str) -> tuple[list[bytes | None], bytes]:
    if not isinstance(key, str):
        raise EncodeError(f"content key must be str, not {type(key).__name__}")
    data = key.encode()
    entry: tuple[list[bytes | None], bytes] = (
        [None] * 128,
        b"\x0a" + _varint(len(data)) + data + b"\x12",
    )
    if len(_HEADS) >= _HEADS_MAX:
        _HEADS.clear()
    _HEADS[key] = entry
    return entry


def _content_head(prefix: bytes, vlen: int) -> bytes:
    """Content header + key prefix + value length: the Content's bytes before the value."""
    vlen_bytes = _varint(vlen)
    return b"\x12" + _varint(len(prefix) + len(vlen_bytes) + vlen) + prefix + vlen_bytes


def _content_piece(key: object, value: object) -> bytes:
    """Slow path for unusual contents (list pairs, bytes-like values): validate and encode."""
    if not isinstance(key, str):
        raise EncodeError(f"content key must be str, not {type(key).__name__}")
    if isinstance(value, str):
        data = value.encode()
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    else:
        raise EncodeError(f"content value of {key!r} is {type(value).__name__}, not str/bytes")
    prefix = (_HEADS.get(key) or _key_entry(key))[1]
    return _content_head(prefix, len(data)) + data


def _string_field(tag: bytes, text: str) -> bytes:
    if not isinstance(text, str):
        raise EncodeError(f"expected str, got {type(text).__name__}")
    data = text.encode()
    return tag + _varint(len(data)) + data


def _trailer(group: LogGroup) -> bytes:
    cache_key = (group.topic, group.source, group.tags)
    cached = _TRAILERS.get(cache_key)
    if cached is not None:
        return cached
    parts = [_string_field(b"\x1a", group.topic), _string_field(b"\x22", group.source)]
    for key, value in group.tags:
        tag = _string_field(b"\x0a", key) + _string_field(b"\x12", value)
        parts.append(b"\x32" + _varint(len(tag)) + tag)
    trailer = b"".join(parts)
    if len(_TRAILERS) >= _TRAILERS_MAX:
        _TRAILERS.clear()
    _TRAILERS[cache_key] = trailer
    return trailer


def encode_python(group: LogGroup) -> bytes:
    """Hand-written encoder: precomputed pieces joined with ``bytes.join``.

    Per Content it appends a cached head (everything before the value) and the value, or one
    cached complete piece for short repeated values; each Log is joined once to learn its
    length. See the cache comments above.
    """
    try:
        return _encode_python(group)
    except EncodeError:
        raise
    except (ValueError, struct.error, OverflowError, TypeError, AttributeError) as exc:
        # UnicodeEncodeError (lone surrogate) is a ValueError; struct.error is time_ns range.
        raise EncodeError(f"cannot encode LogGroup: {exc}") from exc


def _encode_python(group: LogGroup) -> bytes:
    out: list[bytes] = []
    out_append = out.append
    heads_get = _HEADS.get
    pieces = _PIECES
    pieces_get = pieces.get
    varint = _varint
    varint1 = _VARINT1
    join = b"".join
    pack_time_ns = _pack_time_ns
    last_time: int | None = None
    time_head = b""
    for log in group.logs:
        time = log.time
        # A batch holds few distinct seconds: encode each one once. (The class test keeps a
        # float equal to the previous int time from slipping through unvalidated.)
        if time != last_time or time.__class__ is not int:
            if time < 0 or time > _UINT32_MAX:
                raise EncodeError(f"Log.time {time} is outside uint32")
            time_head = b"\x08" + varint(time)
            last_time = time
        parts = [time_head]
        append = parts.append
        for pair in log.contents:
            try:
                piece = pieces_get(pair)
            except TypeError:  # unhashable pair (a list, a bytearray value): slow path
                append(_content_piece(*pair))
                continue
            if piece is not None:
                append(piece)
                continue
            key, value = pair
            if value.__class__ is str:
                value = value.encode()
            elif value.__class__ is not bytes:
                append(_content_piece(key, value))
                continue
            entry = heads_get(key) or _key_entry(key)
            vlen = len(value)
            if vlen < 0x80:
                head = entry[0][vlen]
                if head is None:
                    head = entry[0][vlen] = _content_head(entry[1], vlen)
                if vlen <= _PIECE_MAX_VALUE:
                    if len(pieces) >= _PIECES_MAX:
                        pieces.clear()
                    pieces[pair] = head + value
            else:
                head = _content_head(entry[1], vlen)
            append(head)
            append(value)
        time_ns = log.time_ns
        if time_ns is not None:
            append(pack_time_ns(0x25, time_ns))
        body = join(parts)
        size = len(body)
        out_append(b"\x0a" + (varint1[size] if size < 0x80 else varint(size)))
        out_append(body)
    out_append(_trailer(group))
    return join(out)


def encode_entries(
    entries: Iterable[Mapping[str, Any]],
    topic: str = "",
    source: str = "",
    tags: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """Encode spool entries straight into a LogGroup body, without building ``Log`` objects.

    ``entries`` are ``mapping.SpoolEntry`` mappings: ``"time"``, ``"contents"`` (``[key,
    value]`` pairs) and optionally ``"time_ns"``. The result is byte-identical to
    ``encode_log_group(LogGroup(logs, topic, source, tags))`` where each log is
    ``Log(int(e["time"]), tuple((k, v) for k, v in e["contents"]), e.get("time_ns"))``, and
    to ``join_logs([encode_entry_log(e) for e in entries], topic, source, tags)``.

    Raises:
        EncodeError: a missing/invalid field, a pair that is not (str, str | bytes), a time
            outside uint32 or a time_ns outside fixed32, or a string with a lone surrogate.
    """
    out = [encode_entry_log(entry) for entry in entries]
    out.append(_trailer(LogGroup((), topic, source, tags)))
    return b"".join(out)


def encode_entry_log(entry: Mapping[str, Any]) -> bytes:
    """One spool entry as a stored log: the bytes of one ``LogGroup.Logs`` field.

    A stored log is the field tag (``0x0a``), the Log's length and the Log message itself,
    so a LogGroup body is the concatenation of stored logs followed by the trailer
    (:func:`join_logs`). This is what the spool keeps per record (schema v2).

    Raises:
        EncodeError: as :func:`encode_entries`.
    """
    try:
        time = entry["time"]
        if time.__class__ is not int:
            time = int(time)  # what Log(int(entry["time"]), ...) does
        return log_field(time, encode_contents(entry["contents"]), entry.get("time_ns"))
    except EncodeError:
        raise
    except (KeyError, ValueError, struct.error, OverflowError, TypeError, AttributeError) as exc:
        raise EncodeError(f"cannot encode spool entry: {exc!r}") from exc


def log_field(time: int, contents: bytes, time_ns: int | None) -> bytes:
    """The stored log of a Log with these ``Time``, encoded ``Contents`` and ``Time_ns``.

    Raises:
        EncodeError: ``time`` outside uint32, ``time_ns`` outside fixed32.
    """
    if time < 0 or time > _UINT32_MAX:
        raise EncodeError(f"Log.time {time} is outside uint32")
    time_head = _TIME_HEADS.get(time)
    if time_head is None:
        time_head = b"\x08" + _varint(time)
        if len(_TIME_HEADS) >= _TIME_HEADS_MAX:
            _TIME_HEADS.clear()
        _TIME_HEADS[time] = time_head
    if time_ns is None:
        body = time_head + contents
    else:
        try:
            body = b"".join((time_head, contents, _pack_time_ns(0x25, time_ns)))
        except struct.error as exc:
            raise EncodeError(f"Log.time_ns {time_ns} is outside fixed32") from exc
    size = len(body)
    return (b"\x0a" + (_VARINT1[size] if size < 0x80 else _varint(size))) + body


KeyHeads = tuple[list[bytes | None], bytes]
"""A content key's encoding: ``(heads, prefix)``; see ``_HEADS`` and :func:`content`."""


def key_heads(key: str) -> KeyHeads:
    """The cached encoding of a content key, for :func:`content` (callers may keep it).

    Raises:
        EncodeError: ``key`` is not a str, or has a lone surrogate.
    """
    entry = _HEADS.get(key)
    if entry is None:
        try:
            entry = _key_entry(key)
        except UnicodeEncodeError as exc:
            raise EncodeError(f"content key is not valid UTF-8 text: {exc}") from exc
    return entry


def content(heads: KeyHeads, data: bytes) -> bytes:
    """One encoded ``Content`` of the key behind ``heads`` with the value bytes ``data``."""
    vlen = len(data)
    if vlen < 0x80:
        head = heads[0][vlen]
        if head is None:
            head = heads[0][vlen] = _content_head(heads[1], vlen)
        return head + data
    return _content_head(heads[1], vlen) + data


def log_field_of(sec: int, parts: list[bytes], nsec: int) -> bytes:
    """:func:`log_field` for a trusted caller: ``0 <= sec < 2**32``, ``0 <= nsec < 10**9``.

    ``parts`` are encoded Contents; the list is consumed (the time pieces are added to it).
    """
    time_head = _TIME_HEADS.get(sec)
    if time_head is None:
        time_head = b"\x08" + _varint(sec)
        if len(_TIME_HEADS) >= _TIME_HEADS_MAX:
            _TIME_HEADS.clear()
        _TIME_HEADS[sec] = time_head
    parts.insert(0, time_head)
    parts.append(_pack_time_ns(0x25, nsec))
    body = b"".join(parts)
    size = len(body)
    return (b"\x0a" + (_VARINT1[size] if size < 0x80 else _varint(size))) + body


def encode_contents(pairs: Iterable[Iterable[Any]]) -> bytes:
    """The ``Contents`` fields of one Log, from ``(key, value)`` pairs (lists or tuples).

    Keys are ``str``; values ``str`` (sent as UTF-8) or ``bytes``. Short repeated pairs come
    from ``_PIECES``; every other value gets its cached head (``_HEADS``).

    Raises:
        EncodeError: a non-str key, a value that is neither str nor bytes, a lone surrogate.
    """
    # The same loop as _encode_python's, on purpose: calling one shared loop per Log made
    # encode_python ~10% slower (benchmarks/bench_encode.py's group, A/B in one process), and
    # this one re-tuples each pair because spool entries hold [key, value] lists.
    parts: list[bytes] = []
    append = parts.append
    heads_get = _HEADS.get
    pieces = _PIECES
    pieces_get = pieces.get
    try:
        for key, value in pairs:
            pair = (key, value)
            try:
                piece = pieces_get(pair)
            except TypeError:  # an unhashable value: the slow path raises EncodeError
                append(_content_piece(key, value))
                continue
            if piece is not None:
                append(piece)
                continue
            if value.__class__ is str:
                data = value.encode()
            elif value.__class__ is bytes:
                data = value
            else:
                append(_content_piece(key, value))
                continue
            head_entry = heads_get(key) or _key_entry(key)
            vlen = len(data)
            if vlen < 0x80:
                head = head_entry[0][vlen]
                if head is None:
                    head = head_entry[0][vlen] = _content_head(head_entry[1], vlen)
                if vlen <= _PIECE_MAX_VALUE:
                    if len(pieces) >= _PIECES_MAX:
                        pieces.clear()
                    pieces[pair] = head + data
            else:
                head = _content_head(head_entry[1], vlen)
            append(head)
            append(data)
    except EncodeError:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        # UnicodeEncodeError (a lone surrogate) is a ValueError; a pair that is not 2 items.
        raise EncodeError(f"cannot encode contents: {exc!r}") from exc
    return b"".join(parts)


def join_logs(
    logs: bytes | Iterable[bytes],
    topic: str = "",
    source: str = "",
    tags: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A LogGroup body from stored logs (one concatenated ``bytes`` or an iterable of them).

    The stored logs are copied once; nothing is decoded or re-encoded.
    """
    trailer = _trailer(LogGroup((), topic, source, tags))
    if isinstance(logs, bytes):
        return logs + trailer
    return b"".join((*logs, trailer))


def decode_log_field(data: bytes) -> Log:
    """Decode one stored log (exactly one ``LogGroup.Logs`` field, nothing else).

    Raises:
        DecodeError: not exactly one well-formed Logs field.
    """
    buf = bytes(data)
    end = len(buf)
    try:
        if end < 2 or buf[0] != 0x0A:
            raise DecodeError("a stored log starts with the LogGroup.Logs tag 0x0a")
        length, pos = _read_varint(buf, 1, end)
        if pos + length != end:
            raise DecodeError(f"stored log length {length} does not match its {end} bytes")
        return _decode_log(buf, pos, end, {})
    except (_Truncated, IndexError):
        raise DecodeError("truncated stored log") from None


# --- "protobuf": the official SDK's generated LogGroupRaw classes (optional dependency) -------

_LogGroupRaw: Any = None


def encode_protobuf(group: LogGroup) -> bytes:
    """Encode with the SDK's ``aliyun.log.log_logs_raw_pb2.LogGroupRaw`` (imported lazily).

    Raises:
        ImportError: the SDK (``aliyun-log-python-sdk``) or ``protobuf`` is not installed.
    """
    global _LogGroupRaw  # noqa: PLW0603 - lazy import of an optional dependency
    if _LogGroupRaw is None:
        # Generated protobuf code builds its classes at import time, so the module has no
        # attribute a type checker can see (the SDK ships no stubs for it).
        from aliyun.log.log_logs_raw_pb2 import (  # type: ignore[attr-defined]  # noqa: PLC0415
            LogGroupRaw,
        )

        _LogGroupRaw = LogGroupRaw
    message = _LogGroupRaw()
    try:
        for log in group.logs:
            if log.time < 0 or log.time > _UINT32_MAX:
                raise EncodeError(f"Log.time {log.time} is outside uint32")
            pb_log = message.Logs.add()
            pb_log.Time = log.time
            for key, value in log.contents:
                content = pb_log.Contents.add()
                content.Key = key
                content.Value = value.encode() if isinstance(value, str) else value
            if log.time_ns is not None:
                pb_log.Time_ns = log.time_ns
        message.Topic = group.topic
        message.Source = group.source
        for key, value in group.tags:
            tag = message.LogTags.add()
            tag.Key = key
            tag.Value = value
        encoded: bytes = message.SerializeToString()
        return encoded
    except EncodeError:
        raise
    except (UnicodeEncodeError, ValueError, TypeError) as exc:
        raise EncodeError(f"cannot encode LogGroup: {exc}") from exc


# --- "fastpb": aliyun-log-fastpb (Rust, quick-protobuf) -------------------------------------

_fastpb_serialize: Callable[[dict[str, Any]], bytes] | None = None


def encode_fastpb(group: LogGroup) -> bytes:
    """Encode with ``aliyun_log_fastpb.serialize_log_group_raw`` (imported lazily).

    Its input is a dict: ``{"LogItems": [{"Time", "TimeNs" (absent = not written),
    "Contents": [{"Key": str, "Value": str | bytes}]}], "LogTags": [{"Key", "Value"}],
    "Topic", "Source"}``; containers must be lists, and a missing Topic/Source is NOT written,
    so both are always passed.
    """
    global _fastpb_serialize  # noqa: PLW0603 - lazy import of an optional dependency
    if _fastpb_serialize is None:
        from aliyun_log_fastpb import serialize_log_group_raw  # noqa: PLC0415

        _fastpb_serialize = serialize_log_group_raw
    items = []
    for log in group.logs:
        item: dict[str, Any] = {
            "Time": log.time,
            "Contents": [{"Key": key, "Value": value} for key, value in log.contents],
        }
        if log.time_ns is not None:
            item["TimeNs"] = log.time_ns
        items.append(item)
    payload = {
        "LogItems": items,
        "LogTags": [{"Key": key, "Value": value} for key, value in group.tags],
        "Topic": group.topic,
        "Source": group.source,
    }
    try:
        return _fastpb_serialize(payload)
    except (TypeError, ValueError, OverflowError) as exc:
        # fastpb reports a surrogate or out-of-range integer as TypeError.
        raise EncodeError(f"cannot encode LogGroup: {exc}") from exc


ENCODERS: dict[str, Callable[[LogGroup], bytes]] = {
    "python": encode_python,
    "protobuf": encode_protobuf,
    "fastpb": encode_fastpb,
}

encode_log_group: Callable[[LogGroup], bytes] = encode_python
"""The default encoder (chosen by measurement, see the module docstring)."""


# --- decoding -----------------------------------------------------------------------------


class _Truncated(Exception):
    """Internal: a length or varint runs past the end of its enclosing message."""


def _read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode a varint starting at ``pos``; returns (value, next position)."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _Truncated
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 64:
            raise DecodeError("varint longer than 10 bytes")


def _skip_field(buf: bytes, pos: int, end: int, wire_type: int, field: int) -> int:
    """Skip an unknown field's payload; returns the next position."""
    if field == 0 or field > _MAX_FIELD_NUMBER:
        raise DecodeError(f"invalid field number {field}")
    if wire_type == 0:
        _, pos = _read_varint(buf, pos, end)
        return pos
    if wire_type == 1:
        pos += 8
    elif wire_type == 2:
        length, pos = _read_varint(buf, pos, end)
        pos += length
    elif wire_type == 5:
        pos += 4
    else:
        raise DecodeError(f"unsupported wire type {wire_type} for field {field}")
    if pos > end:
        raise _Truncated
    return pos


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise DecodeError(f"{what} is not valid UTF-8") from None


def _decode_kv(buf: bytes, pos: int, end: int, what: str) -> tuple[bytes, bytes]:
    """General path for a Content/LogTag message: any field order, unknown fields skipped."""
    key: bytes | None = None
    value: bytes | None = None
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        field, wire_type = tag >> 3, tag & 7
        if field in (1, 2):
            if wire_type != 2:
                raise DecodeError(f"{what} field {field} has wire type {wire_type}, expected 2")
            length, pos = _read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise _Truncated
            if field == 1:
                key = buf[pos:stop]
            else:
                value = buf[pos:stop]
            pos = stop
        else:
            pos = _skip_field(buf, pos, end, wire_type, field)
    if key is None:
        raise DecodeError(f"{what} without required Key")
    if value is None:
        raise DecodeError(f"{what} without required Value")
    return key, value


def _key(kbytes: bytes, key_cache: dict[bytes, str]) -> str:
    key = key_cache.get(kbytes)
    if key is None:
        key = _utf8(kbytes, "Content.Key")
        key_cache[kbytes] = key
    return key


def _decode_log(buf: bytes, pos: int, end: int, key_cache: dict[bytes, str]) -> Log:
    """Decode one Log occupying ``buf[pos:end]``.

    Contents take an inlined fast path when they look like what every encoder writes (tag
    0x12, Key then Value, key shorter than 128 bytes); anything else goes through the general
    ``_decode_kv``. Reads past ``end`` are harmless: every length is checked against ``end``
    before a slice is taken, and a read past the whole buffer raises IndexError -> truncated.
    """
    time: int | None = None
    time_ns: int | None = None
    contents: list[tuple[str, bytes]] = []
    add = contents.append
    while pos < end:
        tag = buf[pos]
        if tag == 0x12:  # Contents, by far the most frequent field
            length = buf[pos + 1]
            if length < 0x80:
                pos += 2
            else:
                length, pos = _read_varint(buf, pos + 1, end)
            stop = pos + length
            if stop > end:
                raise _Truncated
            if length >= 4 and buf[pos] == 0x0A:
                klen = buf[pos + 1]
                kend = pos + 2 + klen
                if klen < 0x80 and kend < stop and buf[kend] == 0x12:
                    vlen = buf[kend + 1]
                    vstart = kend + 2
                    if vlen >= 0x80:
                        vlen, vstart = _read_varint(buf, kend + 1, stop)
                    if vstart + vlen == stop:
                        kbytes = buf[pos + 2 : kend]
                        key = key_cache.get(kbytes)
                        if key is None:
                            key = _key(kbytes, key_cache)
                        add((key, buf[vstart:stop]))
                        pos = stop
                        continue
            kbytes, value = _decode_kv(buf, pos, stop, "Content")
            add((_key(kbytes, key_cache), value))
            pos = stop
            continue
        pos += 1
        if tag >= 0x80:  # multi-byte tag: an unknown field, or a non-canonical encoding
            tag, pos = _read_varint(buf, pos - 1, end)
        if tag == 0x08:  # Time
            time, pos = _read_varint(buf, pos, end)
            if time > _UINT32_MAX:
                raise DecodeError(f"Log.Time {time} is outside uint32")
        elif tag == 0x25:  # Time_ns, fixed32 little-endian
            if pos + 4 > end:
                raise _Truncated
            time_ns = int.from_bytes(buf[pos : pos + 4], "little")
            pos += 4
        elif tag == 0x12:  # Contents behind a non-canonical (multi-byte) tag
            length, pos = _read_varint(buf, pos, end)
            stop = pos + length
            if stop > end:
                raise _Truncated
            kbytes, value = _decode_kv(buf, pos, stop, "Content")
            add((_key(kbytes, key_cache), value))
            pos = stop
        else:
            field, wire_type = tag >> 3, tag & 7
            if field in (1, 2, 4):
                raise DecodeError(f"Log field {field} has wrong wire type {wire_type}")
            pos = _skip_field(buf, pos, end, wire_type, field)
    if time is None:
        raise DecodeError("Log without required Time")
    return Log(time, tuple(contents), time_ns)


def decode_log_group(raw: bytes) -> LogGroup:
    """Decode a PutLogs body (already decompressed) into a ``LogGroup`` with ``bytes`` values.

    Raises:
        DecodeError: not a valid LogGroup (see the module docstring for the exact rules).
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError(f"decode_log_group needs bytes, not {type(raw).__name__}")
    buf = bytes(raw)
    end = len(buf)
    pos = 0
    logs: list[Log] = []
    topic = ""
    source = ""
    tags: list[tuple[str, str]] = []
    key_cache: dict[bytes, str] = {}
    try:
        while pos < end:
            if buf[pos] == 0x0A:  # Logs with a 1-2 byte length: the common case, inlined
                length = buf[pos + 1]
                if length < 0x80:
                    pos += 2
                else:
                    length, pos = _read_varint(buf, pos + 1, end)
                stop = pos + length
                if stop > end:
                    raise _Truncated
                logs.append(_decode_log(buf, pos, stop, key_cache))
                pos = stop
                continue
            tag, pos = _read_varint(buf, pos, end)
            field, wire_type = tag >> 3, tag & 7
            if field in (1, 2, 3, 4, 5, 6):
                if wire_type != 2:
                    raise DecodeError(f"LogGroup field {field} has wire type {wire_type}")
                length, pos = _read_varint(buf, pos, end)
                stop = pos + length
                if stop > end:
                    raise _Truncated
                if field == 1:
                    logs.append(_decode_log(buf, pos, stop, key_cache))
                elif field == 3:
                    topic = _utf8(buf[pos:stop], "Topic")
                elif field == 4:
                    source = _utf8(buf[pos:stop], "Source")
                elif field == 6:
                    key, value = _decode_kv(buf, pos, stop, "LogTag")
                    tags.append((_utf8(key, "LogTag.Key"), _utf8(value, "LogTag.Value")))
                pos = stop  # fields 2 (Reserved) and 5 (MachineUUID) are ignored
            else:
                pos = _skip_field(buf, pos, end, wire_type, field)
    except (_Truncated, IndexError):
        raise DecodeError("truncated LogGroup") from None
    return LogGroup(tuple(logs), topic, source, tuple(tags))
