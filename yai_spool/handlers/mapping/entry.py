"""What a mapped record is: the stored log, the spool entry, the keys and the limits.

Owns :class:`EncodedRecord` (the bytes SLS receives plus per-record overrides),
:class:`SpoolEntry` (its JSON-able reading), the size limits, reserved keys, the record
attributes read as overrides, and the attributes every ``LogRecord`` has (never extras).
Constants only: nothing here runs per record except :meth:`EncodedRecord.entry`.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Final, NamedTuple, TypedDict

from yai_spool.handlers.context import CONTEXT_ATTR, SPAN_ATTR
from yai_spool.sls.encoding import (
    decode_log_field,
)


class EncodedRecord(NamedTuple):
    """A mapped record as the spool stores it: its stored log plus where it goes.

    ``data`` is one ``LogGroup.Logs`` field (tag, length, ``Log``): a PutLogs body is the
    concatenation of stored logs and a trailer (``encoding.join_logs``). ``time`` is the
    record's unix second; ``topic``/``source``/``tags`` are the per-record overrides (None:
    the handler's own), as in :class:`SpoolEntry`.
    """

    data: bytes
    time: int
    topic: str | None
    source: str | None
    tags: list[list[str]] | None

    def entry(self) -> SpoolEntry:
        """The :class:`SpoolEntry` this record encodes (values decoded from UTF-8)."""
        log = decode_log_field(self.data)
        return {
            "time": log.time,
            "time_ns": log.time_ns if log.time_ns is not None else 0,
            "contents": [[k, _as_text(v)] for k, v in log.contents],
            "topic": self.topic,
            "source": self.source,
            "tags": self.tags,
        }


def _as_text(value: str | bytes) -> str:
    # The mapper writes valid UTF-8 only; anything else read back stays visible, escaped.
    if type(value) is str:
        return value
    try:
        return value.decode()  # type: ignore[union-attr]
    except UnicodeDecodeError:
        return value.decode("utf-8", "backslashreplace")  # type: ignore[union-attr]


class _FieldBlock(NamedTuple):
    """The selected record fields of one combination of values, rendered and encoded."""

    types: tuple[type, ...]
    data: bytes
    pairs: tuple[tuple[str, str], ...]
    n_pairs: int  # len(pairs) (a field named "count" would hide tuple.count)
    bulk: int


_NO_FIELDS: Final = _FieldBlock((), b"", (), 0, 0)
# Field values whose rendering depends only on the value (str() of anything else may not).
_CACHEABLE_TYPES: Final = frozenset({str, int, type(None)})
_FIELD_BLOCKS_MAX: Final = 4096
# _encode_plain: attribute-name tuples -> the extras to ship (None: not plain).
_UNSEEN: Final = object()
_LAYOUTS_MAX: Final = 1024
_new_encoded: Final = functools.partial(tuple.__new__, EncodedRecord)


class SpoolEntry(TypedDict):
    """One log entry as the spool stores it (a plain dict at run time)."""

    time: int
    time_ns: int
    contents: list[list[str]]
    topic: str | None
    source: str | None
    tags: list[list[str]] | None


MAX_KEY_BYTES: Final = 128
MAX_TOPIC_BYTES: Final = 128
DEFAULT_MAX_VALUE_BYTES: Final = 1024 * 1024
DEFAULT_MAX_ENTRY_BYTES: Final = 5 * 1024 * 1024
#: Upper bound for ``max_entry_bytes``: one entry must fit a PutLogs request (10 MB raw); the
#: Rust producer keeps its batches at 8 MiB for the same headroom.
MAX_ENTRY_BYTES_LIMIT: Final = 8 * 1024 * 1024
#: Smallest ``max_value_bytes``: the truncation marker itself must fit.
_MIN_VALUE_BYTES: Final = 64


TOPIC_ATTR: Final = "sls_topic"
SOURCE_ATTR: Final = "sls_source"
#: Record attribute holding a mapping of more extras, shipped like ``extra=`` fields. For keys
#: ``logging`` refuses in ``extra=`` (``name``, ``message``, ``filename``... any LogRecord
#: attribute): :func:`yai_spool.handlers.structlog.render_to_log_kwargs` puts them here.
EXTRA_ATTR: Final = "sls_extra"
TAGS_ATTR: Final = "sls_tags"
CREATED_NS_ATTR: Final = "created_ns"
#: Key of the note listing fields that needed a fallback value.
ERROR_KEY: Final = "yai_spool_error"
#: Key of the note added when the entry as a whole had to be cut to ``max_entry_bytes``.
TRUNCATED_KEY: Final = "yai_spool_truncated"

# Approximate protobuf framing per Content: two field tags, two length varints, the Content
# tag and its length. Exact to a byte or two; the entry limit sits far below the 10 MB wall.
_FIELD_OVERHEAD: Final = 8
# Values up to this many ASCII characters skip the UTF-8 encode on the hot path; it also
# bounds how much such a value can contribute to the entry size estimate.
_FAST_CHARS: Final = 4096
_KEY_CACHE_MAX: Final = 4096
_JSON_MAX_DEPTH: Final = 64
_NOTE_MAX_CHARS: Final = 512
_SECOND_NS: Final = 1_000_000_000
_UINT32_END: Final = 2**32
_MAX_NS: Final = _UINT32_END * _SECOND_NS

# Attributes every LogRecord has, computed from a blank record (structlog's trick) so new
# Python versions (3.12 added taskName) are handled without a list to maintain. "message" and
# "asctime" are written by Formatter.format.
_BLANK_RECORD_ATTRS: Final = tuple(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
)
_STANDARD_ATTRS: Final = frozenset(_BLANK_RECORD_ATTRS) | {"message", "asctime"}
_OVERRIDE_ATTRS: Final = frozenset(
    {TOPIC_ATTR, SOURCE_ATTR, TAGS_ATTR, EXTRA_ATTR, CONTEXT_ATTR, SPAN_ATTR, CREATED_NS_ATTR}
)
_NOT_EXTRA: Final = _STANDARD_ATTRS | _OVERRIDE_ATTRS
_N_STANDARD: Final = len(_BLANK_RECORD_ATTRS)
# "No dynamic keys on this record": lets plain records skip copying the fixed key set. Only
# ever read (membership tests); the code adds keys only to a fresh copy.
_NOTHING_SEEN: Final[set[str]] = set()

_KEY_OK: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEY_BAD_CHAR: Final = re.compile(r"[^A-Za-z0-9_]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_DEFAULT_FORMATTER: Final = logging.Formatter()
_FORMATTER_FORMAT: Final = logging.Formatter.format
