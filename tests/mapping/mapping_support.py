"""Shared helpers for the mapping tests: record builders and the entry invariant checker."""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from shared_support import SDK_DEFAULT_FIELDS

from yai_spool.handlers.mapping import (
    MAX_KEY_BYTES,
    MAX_TOPIC_BYTES,
    RESERVED_KEYS,
    EncodedRecord,
    RecordMapper,
    SpoolEntry,
)

KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The default contents' keys in order: the message, then the SDK's default fields.
DEFAULT_KEYS = ["message", *SDK_DEFAULT_FIELDS]
LOGGER = logging.getLogger("tests.mapping")


class StrRaises:
    """An object ``str()`` cannot render: it raises ``error(text)``; ``repr()`` answers
    ``shown``, or raises ``TypeError`` too when ``shown`` is None."""

    def __init__(
        self, error: type[Exception] = ValueError, text: str = "str", shown: str | None = None
    ) -> None:
        self.error, self.text, self.shown = error, text, shown

    def __str__(self) -> str:
        raise self.error(self.text)

    def __repr__(self) -> str:
        if self.shown is None:
            raise TypeError("repr")
        return self.shown


def make_record(
    msg: object = "hello",
    args: Any = None,
    *,
    level: int = logging.INFO,
    extra: dict[str, Any] | None = None,
    exc_info: Any = None,
    sinfo: str | None = None,
    name: str = "tests.mapping",
) -> logging.LogRecord:
    """A record built the way ``Logger._log`` builds one (``makeRecord`` with ``extra``)."""
    return logging.getLogger(name).makeRecord(
        name, level, "/srv/app/views.py", 42, msg, args, exc_info, "handler", extra, sinfo
    )


def exc_info_of(exc: BaseException) -> tuple[Any, ...]:
    """A real ``exc_info`` triple with a traceback, as ``logger.exception`` captures it."""
    try:
        raise exc
    except BaseException:
        return sys.exc_info()


def contents_dict(entry: SpoolEntry) -> dict[str, str]:
    """Contents as a dict (keys are unique, which :func:`check_entry` asserts)."""
    return dict(entry["contents"])  # type: ignore[arg-type]


def encode_both_ways(mapper: RecordMapper, record: logging.LogRecord) -> EncodedRecord:
    """``mapper.encode(record)``, asserted equal to the reference path's encoding, and to the
    fast path's whenever that one answers. Call it inside the context under test (bound
    fields, an active span): both paths read it."""
    fast = mapper._encode_plain(record)
    reference = mapper._encode(record, None)
    public = mapper.encode(record)
    if isinstance(fast, EncodedRecord):
        assert fast == reference
    assert public == reference
    return public


def check_entry(entry: SpoolEntry, *, max_value_bytes: int, max_entry_bytes: int) -> None:
    """Assert every invariant the mapping module documents for an entry."""
    assert set(entry) == {"time", "time_ns", "contents", "topic", "source", "tags"}
    json.dumps(entry, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert type(entry["time"]) is int
    assert 0 <= entry["time"] < 2**32
    assert type(entry["time_ns"]) is int
    assert 0 <= entry["time_ns"] <= 999_999_999
    contents = entry["contents"]
    assert contents, "an entry always has at least one content"
    keys = [pair[0] for pair in contents]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
    total = 0
    for pair in contents:
        assert type(pair) is list
        assert len(pair) == 2
        key, value = pair
        assert type(key) is str
        assert KEY_RE.fullmatch(key), key
        assert 1 <= len(key.encode("utf-8")) <= MAX_KEY_BYTES, key
        assert key not in RESERVED_KEYS
        assert type(value) is str
        size = len(value.encode("utf-8"))  # raises on lone surrogates
        assert size <= max_value_bytes, (key, size)
        total += len(key) + size + 8
    assert total <= max_entry_bytes
    for name in ("topic", "source"):
        value = entry[name]  # type: ignore[literal-required]
        assert value is None or (type(value) is str and len(value.encode()) <= MAX_TOPIC_BYTES)
    tags = entry["tags"]
    if tags is not None:
        assert [k for k, _ in tags] == sorted(k for k, _ in tags)
        for k, v in tags:
            assert type(k) is str
            assert type(v) is str
            k.encode()
            v.encode()
