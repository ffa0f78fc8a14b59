"""Turn a :class:`logging.LogRecord` into one SLS log entry: pure, total, and cheap.

This module owns the mapping from a record to a *SpoolEntry*, the JSON-able dict the spool
stores and the shipper turns into a protobuf ``Log``::

    {"time": 1700000000,                  # unix seconds (uint32)
     "time_ns": 123456000,                # 0..999_999_999, sub-second part
     "contents": [["message", "hello"], ["levelname", "INFO"], ...],
     "topic": None, "source": None,       # str overrides, or None = the handler's own
     "tags": None}                        # [[key, value], ...] sorted by key, or None

:class:`RecordMapper` holds the frozen, validated configuration (build it once per handler)
and :meth:`RecordMapper.map` does the work on the application's logging path. There is no
I/O here, no network, no spool, and no global state besides the read of the request context
(:mod:`yai_spool.handlers.context`).

Invariants of every entry ``map()`` returns (tested with hypothesis):

- ``map()`` never raises (``BaseException``\\ s such as ``KeyboardInterrupt`` still propagate).
  A field that cannot be rendered gets a defined fallback value and a note under the key
  ``yai_spool_error``; a record that cannot be read at all gives a minimal entry holding only
  the message key (``"<unmappable record: ...>"``) and ``yai_spool_error``.
- ``contents`` is non-empty. Every key matches ``[A-Za-z_][A-Za-z0-9_]*``, is 1-128 bytes, is
  not one of the SLS reserved keys, and is unique within the entry (sls-protocol.md §6).
- Every value is a ``str`` that encodes to UTF-8 (no lone surrogates) in at most
  ``max_value_bytes`` bytes; the entry's approximate protobuf size (key + value + 8 bytes per
  field) is at most ``max_entry_bytes``. Cut values end with ``"…[truncated N bytes]"``.
- ``topic``/``source`` are ``None`` or at most 128 UTF-8 bytes; ``time`` fits in uint32.
- ``json.dumps(entry)`` succeeds (values are only str, int, None and lists of those).
- The record is not copied. The only attributes written to it are the caches the stdlib
  ``logging.Formatter.format`` also writes: ``exc_text``, and ``message``/``asctime`` when a
  ``logging.Formatter`` is in use.

Rules applied to hostile input (each is a documented contract, see the tests):

- Keys: every character outside ``[A-Za-z0-9_]`` becomes ``_`` (non-ASCII letters too: the SLS
  data model allows letters, digits and underscore, and we do not bet a whole batch on the
  server accepting non-ASCII); a leading digit gets a ``_`` prefix; an empty key becomes ``_``;
  keys are cut to 128 bytes. A reserved key (``__time__``, ``__source__``, ``__topic__``,
  ``__partition_time__``, ``_extract_others_``, ``__extract_others__``) loses one underscore
  at each end until it is no longer reserved: ``__topic__`` -> ``_topic_``,
  ``__extract_others__`` -> ``extract_others``. ``__tag__:x`` becomes ``__tag___x``. A key
  already present gets ``_2``, ``_3``... (built-in fields win over extras).
- Strings: valid surrogate pairs are joined; a lone surrogate from ``surrogateescape``
  (U+DC80..U+DCFF) becomes ``\\xNN`` (what the original byte decodes to with
  ``backslashreplace``); any other lone surrogate becomes ``\\udNNN``.
- ``bytes``/``bytearray``/``memoryview``: UTF-8 with ``backslashreplace``.
- ``dict``/``list``/``tuple``: ``json.dumps`` (``", "``/``": "`` separators like the SDK,
  ``ensure_ascii=json_ensure_ascii``); values JSON cannot encode are rendered with ``str()``
  (bytes decoded as above). If encoding still fails (cycles, non-string keys, ints beyond the
  ``str()`` digit limit, nesting deeper than 64) the value is rebuilt first: cycles become
  ``"<recursion>"``, too-deep parts ``"<too deep>"``, huge ints hex strings. The result is
  always valid JSON text (``NaN``/``Infinity`` as ``json.dumps`` writes them).
- Anything else: ``str(value)``; if that raises, ``repr(value)``; ints beyond the digit limit
  become ``hex(value)``; if everything raises, ``"<unprintable TypeName: ExcName>"``.
- ``None`` values and callables are omitted from fields and extras (as the SDK does).
- A message whose ``%`` formatting fails becomes
  ``"<unformattable: TypeError: ...> msg='...' args=(...)"``.

Time: on Python 3.11-3.13 a record only carries ``created`` (a float from ``time.time()``;
3.13 computes it from ``time.time_ns()`` but still stores the float). At today's epoch a
double resolves about 0.24 µs, so ``time_ns`` is the float's exact fraction rounded to the
nanosecond: microsecond-accurate, the best the record holds. If a record has an ``int``
attribute ``created_ns`` (install a ``logging.setLogRecordFactory`` that sets it from
``time.time_ns()``) that is used instead. A missing or out-of-range ``created`` falls back to
the current time with a note in ``yai_spool_error``.

Per-record overrides, read from (and never shipped as) record attributes, i.e. ``extra=``:
``sls_topic`` (str), ``sls_source`` (str), ``sls_tags`` (mapping str -> str, merged over the
configured ``tags``), ``sls_extra`` (a mapping shipped as more extras, after the record's own:
for keys ``logging`` refuses in ``extra=``, such as ``name`` or ``filename``; keys clashing
with a field are suffixed as usual, ``name`` -> ``name_2``), ``sls_context`` and ``sls_span``
(set by :class:`yai_spool.handlers.context.ContextFilter`), ``created_ns`` (int, see Time).

Migrating from aliyun.log.QueuedLogHandler
------------------------------------------

``SpoolHandler`` accepts the field-selection arguments of ``aliyun.log.QueuedLogHandler``
under the same names, with the same defaults, and produces the same keys and value formats:
``fields`` (``LogFields`` members - ours or the SDK's - or their names), ``extra``,
``buildin_fields_prefix``/``buildin_fields_suffix``, ``extract_json``,
``extract_json_drop_message``, ``extract_json_prefix``/``extract_json_suffix``,
``extract_kv``, ``extract_kv_drop_message``, ``extract_kv_prefix``/``extract_kv_suffix``,
``extract_kv_sep``, and ``topic``. ``None`` means "default" for each, as in the SDK. The
default contents are ``message``, ``name``, ``levelname``, ``funcName``, ``module``,
``pathname``, ``lineno``, ``process``, ``processName``, ``thread``, ``threadName`` plus every
``extra=`` attribute. Replace ``from aliyun.log import QueuedLogHandler, LogFields`` with
``from yai_spool import SpoolHandler, LogFields`` and keep the arguments. Deliberate
differences (each pinned by a test in ``tests/mapping/test_mapping_sdk_compat.py``):

1. Exceptions and ``stack_info`` go to their own fields, ``exc_text`` and ``stack_info``
   (prefix/suffix applied), instead of being appended to ``message``. Pass
   ``exception_key=None, stack_key=None`` to append them like the SDK does.
2. Contents come in a fixed order (message, fields in ``LogFields`` order, exception, stack,
   extracted JSON/KV fields, extras in the order given, request context). The SDK iterates a
   ``set``, so its order changes with ``PYTHONHASHSEED``.
3. Keys are sanitised (see above) and made unique; the SDK sends whatever it has, including
   duplicates, keys with ``.``/``-``/``:``/non-ASCII characters, and reserved keys.
4. Values are bounded (``max_value_bytes``, ``max_entry_bytes``) and lone surrogates replaced;
   the SDK passes them on unchecked.
5. ``dict``/``list``/``tuple`` values are JSON with non-ASCII characters kept
   (``json_ensure_ascii=True`` restores the SDK's ``\\uXXXX`` escapes). Values JSON cannot
   encode are rendered with ``str()`` inside valid JSON; the SDK falls back to ``str()`` of the
   whole container, which is not JSON.
6. ``bytes`` values decode with ``backslashreplace``; the SDK silently drops invalid bytes.
7. ``extract_kv`` scans the *formatted* message (``msg % args``), so pairs passed as
   arguments are found; the SDK scans the raw ``msg``. The separator is ``re.escape``\\ d (the
   SDK's regex breaks for separators such as ``|``).
8. Extras named like a ``LogFields`` member (``level``, ``record_name``, ``line_no``...) or
   starting with ``__`` are shipped (keys sanitised); the SDK drops them silently. A string
   in ``fields`` may also be a ``LogFields`` value (``"levelname"``), where the SDK raises
   ``KeyError`` on every record, or a standard record attribute outside ``LogFields``
   (``"taskName"`` on 3.12+).
9. ``time_ns`` is the record's own sub-second time; the SDK sends the sub-second part of the
   moment the request is built. Timestamps from ``created`` are identical.
10. Attributes defined on a ``LogRecord`` subclass (not in the instance ``__dict__``) are not
    extras; the SDK's ``dir(record)`` picks them up.
11. ``SimpleLogHandler.skip_message`` / ``built_in_root_field`` (setters, not constructor
    arguments) are not supported.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import json
import logging
import operator
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TypedDict

from yai_spool.handlers.context import CONTEXT_ATTR, SPAN_ATTR, RequestContext
from yai_spool.handlers.otel import resolve_keys, span_ids
from yai_spool.sls.encoding import (
    KeyHeads,
    content,
    decode_log_field,
    encode_contents,
    key_heads,
    log_field,
    log_field_of,
)

__all__ = [
    "CREATED_NS_ATTR",
    "DEFAULT_FIELDS",
    "DEFAULT_MAX_ENTRY_BYTES",
    "DEFAULT_MAX_VALUE_BYTES",
    "ERROR_KEY",
    "EXTRA_ATTR",
    "MAPPER_OPTIONS",
    "MAX_ENTRY_BYTES_LIMIT",
    "MAX_KEY_BYTES",
    "MAX_TOPIC_BYTES",
    "RESERVED_KEYS",
    "SOURCE_ATTR",
    "TAGS_ATTR",
    "TOPIC_ATTR",
    "TRUNCATED_KEY",
    "LogFields",
    "RecordMapper",
    "SpoolEntry",
    "clean_text",
    "sanitize_key",
]


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
    count: int
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


class LogFields(enum.Enum):
    """Record fields that can be selected; names and values equal ``aliyun.log.LogFields``.

    The value is the ``LogRecord`` attribute read *and* the key written (plus prefix/suffix).
    """

    record_name = "name"
    level = "levelname"
    file_name = "filename"
    func_name = "funcName"
    module = "module"
    file_path = "pathname"
    line_no = "lineno"
    process_id = "process"
    process_name = "processName"
    thread_id = "thread"
    thread_name = "threadName"

    level_no = "levelno"
    asc_time = "asctime"
    created_timestamp = "created"
    micro_second = "msecs"
    relative_created = "relativeCreated"


#: The SDK's ``DEFAULT_RECORD_LOG_FIELDS``, in declaration order.
DEFAULT_FIELDS: Final[tuple[LogFields, ...]] = (
    LogFields.record_name,
    LogFields.level,
    LogFields.func_name,
    LogFields.module,
    LogFields.file_path,
    LogFields.line_no,
    LogFields.process_id,
    LogFields.process_name,
    LogFields.thread_id,
    LogFields.thread_name,
)

MAX_KEY_BYTES: Final = 128
MAX_TOPIC_BYTES: Final = 128
DEFAULT_MAX_VALUE_BYTES: Final = 1024 * 1024
DEFAULT_MAX_ENTRY_BYTES: Final = 5 * 1024 * 1024
#: Upper bound for ``max_entry_bytes``: one entry must fit a PutLogs request (10 MB raw); the
#: Rust producer keeps its batches at 8 MiB for the same headroom.
MAX_ENTRY_BYTES_LIMIT: Final = 8 * 1024 * 1024
#: Smallest ``max_value_bytes``: the truncation marker itself must fit.
_MIN_VALUE_BYTES: Final = 64

RESERVED_KEYS: Final = frozenset(
    {
        "__time__",
        "__source__",
        "__topic__",
        "__partition_time__",
        "_extract_others_",
        "__extract_others__",
    }
)

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
# Never selectable as fields: they are the message and exception machinery (SDK BLACK_FIELD_LIST).
_BLACK_FIELDS: Final = frozenset({"exc_info", "exc_text", "stack_info", "msg", "args", "message"})
_FIELDS_BY_VALUE: Final = {m.value: m for m in LogFields}

_KEY_OK: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEY_BAD_CHAR: Final = re.compile(r"[^A-Za-z0-9_]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")

_DEFAULT_FORMATTER: Final = logging.Formatter()
_FORMATTER_FORMAT: Final = logging.Formatter.format


# --------------------------------------------------------------------------- text helpers


def _type_name(obj: object) -> str:
    try:
        return type(obj).__qualname__
    except Exception:
        return "object"


def _safe_str(obj: object) -> str:
    """``str(obj)``, else ``hex`` for huge ints, else ``repr``, else a marker. Never raises."""
    try:
        s = str(obj)
    except Exception as exc:
        try:
            if isinstance(obj, int):
                # str() refuses ints above sys.get_int_max_str_digits(); hex has no limit.
                return hex(obj)
            s = repr(obj)
        except Exception:
            return f"<unprintable {_type_name(obj)}: {type(exc).__name__}>"
    # str() may return a str subclass; str.__str__ gives an exact str (JSON and C code rely on it).
    return s if type(s) is str else str.__str__(s)


def _safe_repr(obj: object) -> str:
    try:
        s = repr(obj)
    except Exception as exc:
        return f"<unrepresentable {_type_name(obj)}: {type(exc).__name__}>"
    return s if type(s) is str else str.__str__(s)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {_safe_str(exc)}"
    return text if len(text) <= _NOTE_MAX_CHARS else text[:_NOTE_MAX_CHARS] + "…"


def _replace_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        # surrogateescape's encoding of byte (code - 0xDC00): show the byte the way
        # bytes.decode("utf-8", "backslashreplace") would.
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def _fix_surrogates(s: str) -> str:
    # Join valid high+low pairs first (text that came through UTF-16 APIs), then escape the rest.
    s = s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    return _SURROGATE.sub(_replace_surrogate, s)


def _truncate_encoded(data: bytes, max_bytes: int) -> str:
    """Cut UTF-8 ``data`` on a character boundary so that text + marker <= ``max_bytes``."""
    total = len(data)
    # The marker's digits depend on the cut; size it for the largest possible count.
    keep = max(0, max_bytes - len(f"…[truncated {total} bytes]".encode()))
    while keep > 0 and (data[keep] & 0xC0) == 0x80:  # continuation byte: back up to a start
        keep -= 1
    return data[:keep].decode("utf-8") + f"…[truncated {total - keep} bytes]"


def clean_text(s: str, max_bytes: int) -> str:
    """Return ``s`` as valid UTF-8 text of at most ``max_bytes`` bytes (see module rules).

    ``s`` must be an exact ``str``. Never raises for such input.
    """
    if s.isascii():
        if len(s) <= max_bytes:
            return s
        return _truncate_encoded(s.encode("ascii"), max_bytes)
    try:
        data = s.encode("utf-8")
    except UnicodeEncodeError:
        s = _fix_surrogates(s)
        data = s.encode("utf-8")
    if len(data) <= max_bytes:
        return s
    return _truncate_encoded(data, max_bytes)


def _cut_ident(value: object, max_bytes: int = MAX_TOPIC_BYTES) -> str:
    """Topic/source/tag text: cleaned and cut on a boundary, without a marker.

    These are grouping identifiers of at most 128 bytes; a marker would eat most of the room.
    """
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "backslashreplace")
    s = clean_text(_safe_str(value), 1 << 62)
    data = s.encode("utf-8")
    if len(data) <= max_bytes:
        return s
    keep = max_bytes
    while keep > 0 and (data[keep] & 0xC0) == 0x80:
        keep -= 1
    return data[:keep].decode("utf-8")


def sanitize_key(key: object) -> str:
    """Return ``key`` as a valid, non-reserved SLS content key (see the module rules)."""
    k = key if type(key) is str else _safe_str(key)
    if _KEY_OK.fullmatch(k) and k not in RESERVED_KEYS:
        return k
    k = _KEY_BAD_CHAR.sub("_", k) or "_"
    if k[0].isdigit():
        k = "_" + k
    k = k[:MAX_KEY_BYTES]  # ASCII by now, so characters are bytes
    while k in RESERVED_KEYS:  # all reserved keys start and end with "_"
        k = k[1:-1]
    return k


def _dedupe(key: str, seen: set[str]) -> str:
    n = 2
    while True:
        suffix = f"_{n}"
        candidate = key[: MAX_KEY_BYTES - len(suffix)] + suffix
        if candidate not in seen:
            return candidate
        n += 1


def _json_default(obj: object) -> object:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        try:
            return bytes(obj).decode("utf-8", "backslashreplace")
        except Exception:
            return _safe_str(obj)
    return _safe_str(obj)


def _json_key(key: object) -> str:
    # The conversions json.dumps itself applies to non-str keys, made total.
    if type(key) is str:
        return key
    if key is None:
        return "null"
    if key is True:
        return "true"
    if key is False:
        return "false"
    if type(key) is float:
        return json.dumps(key)
    return _safe_str(key)


def _jsonable(obj: object, depth: int, active: set[int]) -> object:
    """Rebuild ``obj`` so that ``json.dumps`` cannot fail: the slow path after a failure."""
    t = type(obj)
    if obj is None or t is str or t is bool or t is float:
        return obj
    if isinstance(obj, int):
        try:
            return int(int.__repr__(obj))  # a plain int, whatever the subclass's __str__ says
        except Exception:
            try:
                return hex(obj)  # beyond the str() digit limit
            except Exception:
                return _safe_str(obj)
    if isinstance(obj, (dict, list, tuple)):
        if depth >= _JSON_MAX_DEPTH:
            return "<too deep>"
        if id(obj) in active:
            return "<recursion>"
        active.add(id(obj))
        try:
            if isinstance(obj, dict):
                return {_json_key(k): _jsonable(v, depth + 1, active) for k, v in list(obj.items())}
            return [_jsonable(v, depth + 1, active) for v in list(obj)]
        except Exception as exc:
            return f"<unencodable {_type_name(obj)}: {type(exc).__name__}>"
        finally:
            active.discard(id(obj))
    return _json_default(obj)


# --------------------------------------------------------------------------- configuration

_FieldSpec = LogFields | enum.Enum | str


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RecordMapper:
    """Frozen, validated mapping configuration; :meth:`map` turns records into entries.

    The SDK-named options accept ``None`` for "default", as ``aliyun.log.QueuedLogHandler``
    does. Everything that does not depend on the record is computed once here.

    Args:
        fields: ``LogFields`` members (ours or the SDK's), their names (``"level"``), their
            values (``"levelname"``), or other record attribute names. With ``extra=True``
            unknown names are covered by the extras anyway; with ``extra=False`` they are a
            whitelist of ``extra=`` attributes. Default: :data:`DEFAULT_FIELDS`.
        extra: ship every non-standard record attribute (``extra=``). Default True.
        buildin_fields_prefix, buildin_fields_suffix: wrap the keys of the message, fields,
            exception, stack, extras and context fields. Default "".
        extract_json: when ``record.msg`` is a dict, ship its items as fields (keys wrapped
            in ``extract_json_prefix``/``extract_json_suffix``). Default False.
        extract_json_drop_message: then omit ``message`` if anything was extracted.
        extract_kv: when the message is text, ship ``k=v`` / ``k="v v"`` pairs found in it
            (keys wrapped in ``extract_kv_prefix``/``extract_kv_suffix``). Default False.
        extract_kv_drop_message: then omit ``message`` if anything was extracted.
        extract_kv_sep: the separator between key and value. Default "=".
        topic, source: defaults for the entry's ``topic``/``source`` (<= 128 bytes), which
            ``extra={"sls_topic": ...}`` / ``{"sls_source": ...}`` override. Default None.
        tags: default LogGroup tags, merged under ``extra={"sls_tags": {...}}``.
        format: a ``logging.Formatter`` or a ``record -> str`` callable producing the message;
            None: ``record.getMessage()``. A ``Formatter`` that does not override ``format()``
            is driven through ``formatMessage``/``formatException``/``formatStack`` so the
            traceback is not duplicated into the message. :meth:`map` can override it per call.
        exception_key: key of the formatted exception (``record.exc_text``); None appends it
            to the message as ``logging.Formatter.format`` (and the SDK) does. "exc_text".
        stack_key: key of ``stack_info``; None appends it to the message. "stack_info".
        context: add the fields bound with :func:`yai_spool.handlers.context.bind`. Default True.
        context_vars: more ``{key: ContextVar}`` read on every record (unset/None omitted).
        otel: add the active OpenTelemetry span's ``trace_id`` / ``span_id`` /
            ``trace_flags`` (see :mod:`yai_spool.handlers.otel`; nothing happens, and nothing is
            imported, in a process that does not use OTel). Default True.
        otel_keys: the content keys of those three fields, e.g. ``{"trace_id": "traceId"}``;
            None for a field omits it. Default :data:`~yai_spool.handlers.otel.OTEL_KEYS`.
        max_value_bytes: UTF-8 bytes per value, marker included. Default 1 MiB (SLS limit).
        max_entry_bytes: approximate protobuf bytes per entry. Default 5 MiB, at most 8 MiB.
        json_ensure_ascii: escape non-ASCII in JSON-encoded values like the SDK. Default False.

    Raises:
        TypeError: an option has the wrong type.
        ValueError: an option has an invalid value (unknown enum member, limit out of range).
    """

    fields: Iterable[_FieldSpec] | None = None
    extra: bool | None = True
    buildin_fields_prefix: str | None = ""
    buildin_fields_suffix: str | None = ""
    extract_json: bool | None = False
    extract_json_drop_message: bool | None = False
    extract_json_prefix: str | None = ""
    extract_json_suffix: str | None = ""
    extract_kv: bool | None = False
    extract_kv_drop_message: bool | None = False
    extract_kv_prefix: str | None = ""
    extract_kv_suffix: str | None = ""
    extract_kv_sep: str | None = "="
    topic: str | None = None
    source: str | None = None
    tags: Mapping[str, str] | None = None
    format: logging.Formatter | Callable[[logging.LogRecord], str] | None = None
    exception_key: str | None = "exc_text"
    stack_key: str | None = "stack_info"
    context: bool = True
    context_vars: Mapping[str, contextvars.ContextVar[Any]] | None = None
    otel: bool = True
    otel_keys: Mapping[str, str | None] | None = None
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES
    json_ensure_ascii: bool = False

    # Derived once in __post_init__; read on every map().
    _field_attrs_in_order: tuple[str, ...] = field(init=False, repr=False)
    _field_keys: tuple[str, ...] = field(init=False, repr=False)
    _field_getter: Callable[[dict[str, Any]], tuple[Any, ...]] = field(init=False, repr=False)
    _fixed_keys: frozenset[str] = field(init=False, repr=False)
    _message_key: str = field(init=False, repr=False)
    _exception_key: str | None = field(init=False, repr=False)
    _stack_key: str | None = field(init=False, repr=False)
    _kv_pattern: re.Pattern[str] = field(init=False, repr=False)
    _json_encoder: json.JSONEncoder = field(init=False, repr=False)
    _topic: str | None = field(init=False, repr=False)
    _source: str | None = field(init=False, repr=False)
    _tags: tuple[tuple[str, str], ...] = field(init=False, repr=False)
    _context_plan: tuple[tuple[str, contextvars.ContextVar[Any]], ...] = field(
        init=False, repr=False
    )
    # (index in the span triple, configured key) of each OTel field shipped; the key goes
    # through prefix/suffix/sanitising like a context key. _otel_names: context keys an
    # active span replaces. _span_ids: otel.span_ids, or None when OTel fields are off.
    _otel_plan: tuple[tuple[int, str], ...] = field(init=False, repr=False)
    _otel_names: frozenset[str] = field(init=False, repr=False)
    _span_ids: Callable[[], tuple[str, str, str] | None] | None = field(init=False, repr=False)
    _fast_chars: int = field(init=False, repr=False)
    # Bounded memo of sanitised dynamic keys. Races between threads only cost a recomputation.
    _extra_keys: dict[str, str] = field(init=False, repr=False)
    # Bounded memo of encoded field blocks, keyed by the raw field values of a record.
    _field_blocks: dict[tuple[Any, ...], _FieldBlock] = field(init=False, repr=False)
    _layouts: dict[tuple[Any, ...], Any] = field(init=False, repr=False)
    _plain: bool = field(init=False, repr=False)
    _tags_sorted: list[list[str]] = field(init=False, repr=False)
    _message_heads: KeyHeads = field(init=False, repr=False)
    _per_field: int = field(init=False, repr=False)
    _json_keys: dict[str, str] = field(init=False, repr=False)
    _kv_keys: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Normalise SDK-style ``None`` options, validate, and precompute the plan."""
        setv = object.__setattr__
        for name, default in (
            ("extra", True),
            ("extract_json", False),
            ("extract_json_drop_message", False),
            ("extract_kv", False),
            ("extract_kv_drop_message", False),
        ):
            value = getattr(self, name)
            if value is None:
                setv(self, name, default)
            elif not isinstance(value, bool):
                msg = f"{name} must be a bool or None, not {type(value).__name__}"
                raise TypeError(msg)
        for name in ("context", "otel", "json_ensure_ascii"):
            if not isinstance(getattr(self, name), bool):
                msg = f"{name} must be a bool"
                raise TypeError(msg)
        for name in (
            "buildin_fields_prefix",
            "buildin_fields_suffix",
            "extract_json_prefix",
            "extract_json_suffix",
            "extract_kv_prefix",
            "extract_kv_suffix",
        ):
            value = getattr(self, name)
            if value is None:
                setv(self, name, "")
            elif not isinstance(value, str):
                msg = f"{name} must be a str or None, not {type(value).__name__}"
                raise TypeError(msg)
        if self.extract_kv_sep is None:
            setv(self, "extract_kv_sep", "=")
        if not isinstance(self.extract_kv_sep, str) or not self.extract_kv_sep:
            msg = "extract_kv_sep must be a non-empty str"
            raise ValueError(msg)
        for name in ("max_value_bytes", "max_entry_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                msg = f"{name} must be an int"
                raise TypeError(msg)
        if self.max_value_bytes < _MIN_VALUE_BYTES:
            msg = f"max_value_bytes must be >= {_MIN_VALUE_BYTES}"
            raise ValueError(msg)
        if not 4096 <= self.max_entry_bytes <= MAX_ENTRY_BYTES_LIMIT:
            msg = f"max_entry_bytes must be within 4096..{MAX_ENTRY_BYTES_LIMIT}"
            raise ValueError(msg)
        if not (
            self.format is None
            or isinstance(self.format, logging.Formatter)
            or callable(self.format)
        ):
            msg = "format must be a logging.Formatter, a callable or None"
            raise TypeError(msg)
        for name in ("exception_key", "stack_key", "topic", "source"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                msg = f"{name} must be a str or None"
                raise TypeError(msg)

        pre, suf = self.buildin_fields_prefix, self.buildin_fields_suffix
        assert isinstance(pre, str)  # narrowed above; for the type checker
        assert isinstance(suf, str)
        taken: set[str] = set()

        def fixed(name: str) -> str:
            key = sanitize_key(pre + name + suf)
            if key in taken:
                key = _dedupe(key, taken)
            taken.add(key)
            return key

        setv(self, "_message_key", fixed("message"))
        attrs = tuple(self._field_attrs())
        setv(self, "_field_attrs_in_order", attrs)
        setv(self, "_field_keys", tuple(fixed(attr) for attr in attrs))
        # itemgetter fetches all values in one C call; with one name it would return a bare
        # value, so ask for it twice (zip() stops at the single key).
        getter: Callable[[dict[str, Any]], tuple[Any, ...]]
        if len(attrs) >= 2:
            getter = operator.itemgetter(*attrs)
        else:
            getter = operator.itemgetter(*attrs * 2) if attrs else _no_values
        setv(self, "_field_getter", getter)
        exc_key, stack_key = self.exception_key, self.stack_key
        setv(self, "_exception_key", None if exc_key is None else fixed(exc_key))
        setv(self, "_stack_key", None if stack_key is None else fixed(stack_key))
        setv(self, "_fixed_keys", frozenset(taken))

        # The SDK's pattern, character for character, except that the separator is escaped.
        sep = re.escape(self.extract_kv_sep)
        word = "[\u4e00-\u9fa5\u0800-\u4e00\\w\\.\\-]+"
        p1 = f"(?!{sep})({word})\\s*{sep}\\s*({word})"
        p2 = f'(?!{sep})({word})\\s*{sep}\\s*"\\s*([^"]+?)\\s*"'
        setv(self, "_kv_pattern", re.compile(f"{p1}|{p2}"))
        setv(
            self,
            "_json_encoder",
            json.JSONEncoder(ensure_ascii=self.json_ensure_ascii, default=_json_default),
        )
        setv(self, "_topic", None if self.topic is None else _cut_ident(self.topic))
        setv(self, "_source", None if self.source is None else _cut_ident(self.source))
        if self.tags is not None:
            if not isinstance(self.tags, Mapping):
                msg = "tags must be a mapping of str to str"
                raise TypeError(msg)
            setv(self, "tags", MappingProxyType(dict(self.tags)))
            setv(
                self,
                "_tags",
                tuple((_cut_ident(k, MAX_KEY_BYTES), _cut_ident(v)) for k, v in self.tags.items()),
            )
        else:
            setv(self, "_tags", ())
        ctx_plan: list[tuple[str, contextvars.ContextVar[Any]]] = []
        for name, var in (self.context_vars or {}).items():
            if not isinstance(var, contextvars.ContextVar):
                msg = f"context_vars[{name!r}] must be a contextvars.ContextVar"
                raise TypeError(msg)
            ctx_plan.append((sanitize_key(pre + _safe_str(name) + suf), var))
        setv(self, "_context_plan", tuple(ctx_plan))
        if self.context_vars is not None:
            setv(self, "context_vars", MappingProxyType(dict(self.context_vars)))
        otel_keys = resolve_keys(self.otel_keys)
        if self.otel_keys is not None:
            setv(self, "otel_keys", MappingProxyType(dict(self.otel_keys)))
        plan = tuple((i, k) for i, k in enumerate(otel_keys) if k is not None) if self.otel else ()
        setv(self, "_otel_plan", plan)
        setv(self, "_otel_names", frozenset(k for _, k in plan))
        setv(self, "_span_ids", span_ids if plan else None)
        setv(self, "_fast_chars", min(self.max_value_bytes, _FAST_CHARS))
        setv(self, "_extra_keys", {})
        setv(self, "_json_keys", {})
        setv(self, "_kv_keys", {})
        setv(self, "_field_blocks", {})
        setv(self, "_layouts", {})
        # _encode_plain applies: no extraction, no extra context variables.
        setv(
            self,
            "_plain",
            not (self.extract_json or self.extract_kv or self._context_plan),
        )
        # What _overrides returns for the configured tags (sorted by key).
        setv(self, "_tags_sorted", [[k, v] for k, v in sorted(dict(self._tags).items())])
        setv(self, "_message_heads", key_heads(self._message_key))
        # The per-field term of the entry size estimate (see _encode).
        setv(self, "_per_field", self._fast_chars + MAX_KEY_BYTES + _FIELD_OVERHEAD)

    def _field_attrs(self) -> list[str]:
        """Resolve ``fields`` to record attribute names, built-ins in ``LogFields`` order."""
        specs = DEFAULT_FIELDS if self.fields is None else self.fields
        if isinstance(specs, (str, bytes)) or not isinstance(specs, Iterable):
            msg = "fields must be an iterable of LogFields members or names"
            raise TypeError(msg)
        items = list(specs)
        if isinstance(specs, (set, frozenset)):
            # A set has no order of its own (the SDK's source of nondeterminism); use names.
            items.sort(key=lambda x: x if isinstance(x, str) else getattr(x, "name", ""))
        if self.fields is not None:
            object.__setattr__(self, "fields", tuple(items))  # a generator would be spent
        chosen: set[LogFields] = set()
        custom: list[str] = []
        for spec in items:
            if isinstance(spec, enum.Enum):
                member = LogFields.__members__.get(spec.name)
                if member is None or member.value != spec.value:
                    msg = f"unknown LogFields member {spec!r}"
                    raise ValueError(msg)
                chosen.add(member)
            elif isinstance(spec, str):
                if spec in _BLACK_FIELDS:
                    continue  # message machinery, as in the SDK
                member = LogFields.__members__.get(spec) or _FIELDS_BY_VALUE.get(spec)
                if member is not None:
                    chosen.add(member)
                elif (spec in _STANDARD_ATTRS or not self.extra) and spec not in custom:
                    # Standard attributes are never extras, so they must be fields to appear.
                    # Otherwise the SDK's rule: with extra on, extras already cover the name.
                    custom.append(spec)
            else:
                msg = f"fields entries must be LogFields members or str, not {type(spec).__name__}"
                raise TypeError(msg)
        return [m.value for m in LogFields if m in chosen] + custom

    # ----------------------------------------------------------------------- the hot path

    def encode(
        self,
        record: logging.LogRecord,
        formatter: logging.Formatter | Callable[[logging.LogRecord], str] | None = None,
    ) -> EncodedRecord:
        """Map ``record`` straight to its stored log (the bytes SLS receives). Never raises.

        This is the logging path: the entry :meth:`map` describes, encoded as one
        ``LogGroup.Logs`` field without building the entry first. The fields that repeat from
        record to record (logger, level, function, file, line, process, thread) are encoded
        once per distinct combination and reused (``_field_blocks``).

        Args:
            record: the record; read, not copied. Call on the thread that logged it, or add
                :class:`yai_spool.handlers.context.ContextFilter` upstream, so the context is right.
            formatter: overrides the configured ``format`` for this call (a handler passes
                ``self.formatter``, which ``setFormatter``/dictConfig may change at any time).
        """
        try:
            fmt = self.format if formatter is None else formatter
            message = None
            if fmt is None and self._plain:
                try:
                    plain = self._encode_plain(record)
                except Exception:  # a hostile attribute (__bool__/__eq__ raising): _encode
                    plain = None
                if type(plain) is EncodedRecord:
                    return plain
                message = plain
            return self._encode(record, fmt, message)  # type: ignore[arg-type]
        except Exception as exc:
            return self._broken(record, exc)

    def map(
        self,
        record: logging.LogRecord,
        formatter: logging.Formatter | Callable[[logging.LogRecord], str] | None = None,
    ) -> SpoolEntry:
        """Map ``record`` to a :class:`SpoolEntry`. Never raises (see the module invariants).

        The entry is :meth:`encode`'s stored log read back (one code path decides every
        field, so the two can never disagree); the logging path uses :meth:`encode`.
        """
        return self.encode(record, formatter).entry()

    def _encode_plain(self, record: logging.LogRecord) -> EncodedRecord | str | None:
        """The common record, fast: the bytes ``_encode`` would give, or a reason to use it.

        Taken when the message is ``getMessage()`` (no formatter) and no option extracts
        fields; the record has no exception or stack, a plain ``created`` (no ``created_ns``),
        no ``sls_*`` attributes, extras and context values of type ``str``, ``int``,
        ``float`` or ``bool`` (``None`` and callables are skipped, as in ``_add_pairs``), no
        key collisions and no value near a size limit. Otherwise it returns the message it
        already rendered (so ``_encode`` does not format it twice) or None, and ``_encode``
        decides: this path never has to know a fallback rule. ``tests/mapping`` checks that
        both paths give identical bytes on generated records.
        """
        d = record.__dict__
        if d.get("exc_info") or d.get("exc_text") or d.get("stack_info") or CREATED_NS_ATTR in d:
            return None
        created = d.get("created")
        if type(created) is not float or not 0.0 <= created < 4294967296.0:
            return None
        try:
            message = record.getMessage()
        except Exception:
            return None  # _encode renders the documented fallback and notes the error
        if type(message) is not str:
            return None
        fast, limit = self._fast_chars, self.max_value_bytes
        bulk = 0
        if len(message) > fast or not message.isascii():
            original = message
            message = clean_text(message, limit)
            if message is not original:
                return original  # cut or repaired: _encode does it with the same rules
            bulk = len(message)
        parts = [content(self._message_heads, message.encode())]

        block = _NO_FIELDS
        if self._field_keys:
            try:
                values = self._field_getter(d)
            except KeyError:
                return message
            block = self._field_blocks.get(values, _NO_FIELDS)
            if block is _NO_FIELDS or block.types != tuple(map(type, values)):
                block = self._field_block(values)
            bulk += block.bulk
            parts.append(block.data)
        count = 1 + block.count

        more = len(d) > _N_STANDARD
        if more:
            layout = self._layouts.get(tuple(d), _UNSEEN)
            if layout is _UNSEEN:
                layout = self._layout(d)
            if layout is None:
                return message
            for name, _, heads in layout:
                raw = d[name]
                t = type(raw)
                if t is str:
                    if len(raw) > fast or not raw.isascii():
                        if clean_text(raw, limit) is not raw:
                            return message
                        bulk += len(raw)
                    data = raw.encode()
                elif t is int or t is float or t is bool:
                    try:
                        text = str(raw)
                    except ValueError:  # an int beyond the str() digit limit
                        return message
                    bulk += len(text)
                    data = text.encode()
                elif raw is None or callable(raw):
                    continue
                else:
                    return message
                parts.append(content(heads, data))
                count += 1
        ctx = RequestContext.get() if self.context else None
        span = self._span_ids() if self._span_ids is not None else None
        if ctx or span is not None:
            # OTel ids, then context fields (an active span replaces the context's fields of
            # the same names: see _context_items). Keys are checked against everything taken
            # so far (as _add_pairs dedupes them); collisions go through the generic encoder.
            pairs: list[tuple[str, str]] = []
            extra = self._plain_pairs(self._context_items(ctx, span), pairs)
            keys = {k for k, _ in pairs}
            if extra < 0 or len(keys) != len(pairs):
                return message
            if more and layout and not keys.isdisjoint(k for _, k, _ in layout):
                return message
            bulk += extra
            count += len(pairs)
            parts.append(encode_contents(pairs))
        if 4 * bulk + count * self._per_field > self.max_entry_bytes:
            return message
        tags = None
        if self._tags:  # what _overrides (extras present) or _encode (none) would return
            tags = [list(t) for t in (self._tags_sorted if more else self._tags)]
        sec = int(created)
        nsec = int((created - sec) * 1e9 + 0.5)
        if nsec >= _SECOND_NS:
            nsec = _SECOND_NS - 1
        return _new_encoded((log_field_of(sec, parts, nsec), sec, self._topic, self._source, tags))

    def _layout(self, d: dict[str, Any]) -> tuple[tuple[str, str, KeyHeads], ...] | None:
        """Extras to ship for records with these attribute names, in order.

        Each is ``(attribute name, content key, the key's encoding)``.

        None (also remembered) when such records are not plain: an ``sls_*``/``created_ns``
        attribute, a non-str attribute name, or extras whose keys would collide (with a
        fixed field or each other: ``_dedupe`` is ``_encode``'s job).
        """
        layout: tuple[tuple[str, str, KeyHeads], ...] | None = None
        names = [k for k in d if k not in _NOT_EXTRA]
        if not any(k in _OVERRIDE_ATTRS for k in d) and all(type(k) is str for k in names):
            if not self.extra:
                layout = ()
            else:
                keys = []
                for name in names:
                    key = self._extra_keys.get(name)
                    if key is None:
                        key = self._dynamic_key(
                            self._extra_keys,
                            self.buildin_fields_prefix,
                            name,
                            self.buildin_fields_suffix,
                        )
                    keys.append(key)
                if len(set(keys)) == len(keys) and self._fixed_keys.isdisjoint(keys):
                    layout = tuple(
                        (name, key, key_heads(key)) for name, key in zip(names, keys, strict=True)
                    )
        cache = self._layouts
        if len(cache) >= _LAYOUTS_MAX:
            cache.clear()
        cache[tuple(d)] = layout
        return layout

    def _context_items(
        self, ctx: Mapping[Any, Any] | None, span: tuple[str, str, str] | None
    ) -> list[tuple[Any, Any]]:
        """The OTel span's ids (if a span is active), then the bound context fields.

        Precedence: where a span is active its ids win, so a context field with the same
        name as an OTel field (``trace_id`` bound by ``context.bind`` or the ASGI middleware)
        is left out; with no span active the context's fields ship as bound.
        """
        if span is None:
            return list(ctx.items()) if ctx else []
        items: list[tuple[Any, Any]] = [(key, span[i]) for i, key in self._otel_plan]
        if ctx:
            names = self._otel_names
            items += [(k, v) for k, v in ctx.items() if k not in names]
        return items

    def _plain_pairs(self, items: Iterable[tuple[object, object]], out: list[Any]) -> int:
        """Append ``(key, text)`` of plain values (see ``_encode_plain``) to ``out``.

        Returns the characters rendered off the fast path (``_add_pairs``' count), or -1 when
        a value or key needs ``_encode``: another type, a text ``clean_text`` would change,
        or a key of a fixed field (``_dedupe``).
        """
        fast, limit = self._fast_chars, self.max_value_bytes
        cache = self._extra_keys
        fixed = self._fixed_keys
        bulk = 0
        for name, raw in items:
            t = type(raw)
            if t is str:
                value = raw
                if len(raw) > fast or not raw.isascii():  # type: ignore[arg-type]
                    if clean_text(raw, limit) is not raw:  # type: ignore[arg-type]
                        return -1
                    bulk += len(value)  # type: ignore[arg-type]
            elif t is int or t is float or t is bool:
                try:
                    value = str(raw)
                except ValueError:  # an int beyond the str() digit limit
                    return -1
                bulk += len(value)
            elif raw is None or callable(raw):
                continue
            else:
                return -1
            key = cache.get(name) if type(name) is str else None  # type: ignore[call-overload]
            if key is None:
                key = self._dynamic_key(
                    cache, self.buildin_fields_prefix, name, self.buildin_fields_suffix
                )
            if key in fixed:
                return -1
            out.append((key, value))
        return bulk

    def _encode(
        self,
        record: logging.LogRecord,
        fmt: logging.Formatter | Callable[[logging.LogRecord], str] | None,
        rendered: str | None = None,
    ) -> EncodedRecord:
        """Every record: the reference path (``rendered``: ``getMessage()``, when known)."""
        d = record.__dict__
        errors: list[str] = []
        limit = self.max_value_bytes
        fast = self._fast_chars
        text = self._text
        # Contents after the message and the fields, in order (exception, stack, extracted,
        # extras, context, note). Usually empty or a few extras.
        tail: list[list[str]] = []
        add = tail.append
        bulk = 0  # characters of values that skipped the fast path (<= 4 bytes each)

        sec, nsec = _time_of(d, errors)
        message, plain, exc_text, stack_text = self._render(record, d, fmt, errors, rendered)

        extracted: list[tuple[str, str]] | None = None
        drop_message = False
        raw_msg = d.get("msg")
        if self.extract_json and isinstance(raw_msg, dict):
            extracted = self._extract_json(raw_msg, errors)
            drop_message = bool(self.extract_json_drop_message and extracted)
        elif self.extract_kv and isinstance(raw_msg, (str, bytes)):
            if isinstance(raw_msg, bytes):
                plain = raw_msg.decode("utf-8", "backslashreplace")
            elif plain is None:
                plain = _get_message(record, errors)
            extracted = self._extract_kv(plain, errors)
            drop_message = bool(self.extract_kv_drop_message and extracted)

        head: str | None = None
        if not drop_message:
            if not (type(message) is str and len(message) <= fast and message.isascii()):
                message = text(message)
                bulk += len(message)
            head = message  # type: ignore[assignment]

        block = _NO_FIELDS
        if self._field_keys:
            try:
                values = self._field_getter(d)
            except KeyError:  # a hand-made record without some standard attribute
                values = tuple(map(d.get, self._field_attrs_in_order))
            block = self._field_blocks.get(values, _NO_FIELDS)
            # The key compares values with ==, so 1 == 1.0 == True would share an entry;
            # the types make the hit exact.
            if block is _NO_FIELDS or block.types != tuple(map(type, values)):
                block = self._field_block(values)
            bulk += block.bulk

        if exc_text is not None:
            exc_text = clean_text(exc_text, limit)
            bulk += len(exc_text)
            add([self._exception_key, exc_text])  # type: ignore[list-item]
        if stack_text is not None:
            stack_text = clean_text(stack_text, limit)
            bulk += len(stack_text)
            add([self._stack_key, stack_text])  # type: ignore[list-item]

        # Records without extras (the common case) have exactly the attributes of a fresh
        # LogRecord; only a record with more can carry extras or sls_* overrides. (A record
        # with standard attributes deleted *and* extras added is not worth a full scan.)
        more = len(d) > _N_STANDARD
        names: list[Any] = []
        nested: list[tuple[Any, Any]] | None = None
        if more and self.extra:
            try:
                names = [k for k in d if k not in _NOT_EXTRA]
            except Exception as exc:  # e.g. another thread resized the record's __dict__
                errors.append(f"extra: {_describe(exc)}")
            try:
                value = d.get(EXTRA_ATTR)
                nested = list(value.items()) if value else None
            except Exception as exc:
                errors.append(f"{EXTRA_ATTR}: {_describe(exc)}")
        ctx: Any = None
        if self.context:
            try:
                ctx = d.get(CONTEXT_ATTR) if more else None
                if ctx is None:
                    ctx = RequestContext.get()
            except Exception as exc:
                errors.append(f"context: {_describe(exc)}")
                ctx = None
        if self._span_ids is not None:
            # ContextFilter captured the span where the record was made; else read it here.
            span = d.get(SPAN_ATTR, _UNSEEN) if more else _UNSEEN
            if span is _UNSEEN:
                span = self._span_ids()
            elif not (type(span) is tuple and len(span) == 3):
                span = None
        else:
            span = None
        try:
            ctx = self._context_items(ctx, span) if ctx or span is not None else None
        except Exception as exc:
            errors.append(f"context: {_describe(exc)}")
            ctx = None
        # Keys taken so far; copied only when dynamic keys are coming (not for plain records).
        seen: set[str] = _NOTHING_SEEN
        if extracted or names or nested or ctx or self._context_plan:
            seen = set(self._fixed_keys)
            if drop_message:
                seen.discard(self._message_key)  # the extracted "message" may take its key
        if extracted:
            for name, value in extracted:
                key = name if name not in seen else _dedupe(name, seen)
                seen.add(key)
                bulk += len(value)
                add([key, value])

        if names:
            try:
                bulk += self._add_pairs([(k, d[k]) for k in names], tail, seen)
            except Exception as exc:  # e.g. another thread changed the record meanwhile
                errors.append(f"extra: {_describe(exc)}")
        if nested:
            try:
                bulk += self._add_pairs(nested, tail, seen)
            except Exception as exc:
                errors.append(f"{EXTRA_ATTR}: {_describe(exc)}")

        if ctx:
            try:
                bulk += self._add_pairs(ctx, tail, seen)
            except Exception as exc:
                errors.append(f"context: {_describe(exc)}")
        for name, var in self._context_plan:
            try:
                raw = var.get(None)
                if raw is None or callable(raw):
                    continue
                value = text(raw)
            except Exception as exc:
                value = f"<unprintable context var: {_describe(exc)}>"
            key = name if name not in seen else _dedupe(name, seen)
            seen.add(key)
            bulk += len(value)
            add([key, value])

        if more:
            topic, source, tags = self._overrides(d, errors)
        else:
            topic, source = self._topic, self._source
            tags = [[k, v] for k, v in self._tags] if self._tags else None

        if errors:
            note = clean_text("; ".join(errors), min(limit, 4 * _NOTE_MAX_CHARS))
            taken = seen if seen is not _NOTHING_SEEN else set(self._fixed_keys)
            add([ERROR_KEY if ERROR_KEY not in taken else _dedupe(ERROR_KEY, taken), note])
            bulk += len(note)
        count = (head is not None) + block.count + len(tail)
        if 4 * bulk + count * (fast + MAX_KEY_BYTES + _FIELD_OVERHEAD) > self.max_entry_bytes:
            # Possibly too large: measure and cut on the full list of pairs (rare).
            contents = [[self._message_key, head]] if head is not None else []
            contents += [list(p) for p in block.pairs]
            contents += tail
            _enforce_entry_limit(contents, self.max_entry_bytes)
            encoded = encode_contents(contents)
        else:
            if head is None and not block.count and not tail:
                head = ""  # everything was dropped by the *_drop_message options
            parts = [] if head is None else [encode_contents(((self._message_key, head),))]
            parts.append(block.data)
            if tail:
                parts.append(encode_contents(tail))
            encoded = b"".join(parts)
        return EncodedRecord(log_field(sec, encoded, nsec), sec, topic, source, tags)

    def _field_block(self, values: tuple[Any, ...]) -> _FieldBlock:
        """Render and encode the selected record fields (``values`` in ``_field_keys`` order)."""
        fast, limit, text = self._fast_chars, self.max_value_bytes, self._text
        pairs: list[tuple[str, str]] = []
        bulk = 0
        # zip: the single-field getter returns its value twice (see __post_init__).
        for key, raw in zip(self._field_keys, values):  # noqa: B905
            if type(raw) is str:
                value = raw
                if len(raw) > fast or not raw.isascii():
                    value = clean_text(raw, limit)
                    bulk += len(value)
            elif type(raw) is int:
                try:
                    value = str(raw)
                except ValueError:  # beyond the str() digit limit
                    value = text(raw)
            elif raw is None or callable(raw):
                continue  # the SDK skips both
            else:
                value = text(raw)
                bulk += len(value)
            pairs.append((key, value))
        block = _FieldBlock(
            tuple(map(type, values)), encode_contents(pairs), tuple(pairs), len(pairs), bulk
        )
        # Only plain values are remembered: they render the same every time. (str() of any
        # other object may change between records.)
        if all(t in _CACHEABLE_TYPES for t in block.types):
            cache = self._field_blocks
            if len(cache) >= _FIELD_BLOCKS_MAX:
                cache.clear()
            cache[values] = block
        return block

    def _text(self, v: object) -> str:
        """Render any value as bounded, valid text (the SDK's ``_n`` made total)."""
        t = type(v)
        if t is str:
            return clean_text(v, self.max_value_bytes)  # type: ignore[arg-type]
        if v is None:
            return ""
        try:
            if t is int or t is float or t is bool:
                s = str(v)
            elif isinstance(v, (bytes, bytearray, memoryview)):
                s = bytes(v).decode("utf-8", "backslashreplace")
            elif isinstance(v, (dict, list, tuple)):
                s = self._json(v)
            else:
                s = str(v)
                if type(s) is not str:
                    s = str.__str__(s)
        except Exception:
            s = _safe_str(v)
        return clean_text(s, self.max_value_bytes)

    def _json(self, v: object) -> str:
        try:
            return self._json_encoder.encode(v)
        except Exception:  # cycles, non-str keys, huge ints, RecursionError: rebuild and retry
            return self._json_encoder.encode(_jsonable(v, 0, set()))

    def _add_pairs(
        self,
        items: Iterable[tuple[object, object]],
        contents: list[list[str]],
        seen: set[str],
    ) -> int:
        """Append extras or context fields; return the slow-path character count.

        Keys get the built-in prefix/suffix (as the SDK does for extras), are sanitised once
        per distinct name (memoised), and are made unique against ``seen``.
        """
        cache = self._extra_keys
        fast = self._fast_chars
        bulk = 0
        for name, raw in items:
            if raw is None:
                continue
            if type(raw) is str and len(raw) <= fast and raw.isascii():
                value = raw
            else:
                if callable(raw):
                    continue  # the SDK skips callables
                value = self._text(raw)
                bulk += len(value)
            key = cache.get(name) if type(name) is str else None
            if key is None:
                key = self._dynamic_key(
                    cache, self.buildin_fields_prefix, name, self.buildin_fields_suffix
                )
            if key in seen:
                key = _dedupe(key, seen)
            seen.add(key)
            contents.append([key, value])
        return bulk

    @staticmethod
    def _dynamic_key(
        cache: dict[str, str], prefix: str | None, name: object, suffix: str | None
    ) -> str:
        raw = name if type(name) is str else _safe_str(name)
        key = sanitize_key(f"{prefix}{raw}{suffix}")
        if type(name) is str and len(cache) < _KEY_CACHE_MAX:
            cache[name] = key
        return key

    def _extract_json(self, msg: dict[Any, Any], errors: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        try:
            for k, v in list(msg.items()):
                # The SDK renders None as "" here (unlike fields) and keeps callables.
                name = k if type(k) is str else self._text(k)
                key = self._json_keys.get(name)
                if key is None:
                    key = self._dynamic_key(
                        self._json_keys, self.extract_json_prefix, name, self.extract_json_suffix
                    )
                out.append((key, self._text(v)))
        except Exception as exc:
            errors.append(f"extract_json: {_describe(exc)}")
        return out

    def _extract_kv(self, message: str, errors: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        try:
            for k1, v1, k2, v2 in self._kv_pattern.findall(message):
                k, v = (k1, v1) if k1 else (k2, v2)
                if not k:
                    continue
                key = self._kv_keys.get(k)
                if key is None:
                    key = self._dynamic_key(
                        self._kv_keys, self.extract_kv_prefix, k, self.extract_kv_suffix
                    )
                out.append((key, clean_text(v, self.max_value_bytes)))
        except Exception as exc:
            errors.append(f"extract_kv: {_describe(exc)}")
        return out

    def _render(
        self,
        record: logging.LogRecord,
        d: dict[str, Any],
        fmt: logging.Formatter | Callable[[logging.LogRecord], str] | None,
        errors: list[str],
        rendered: str | None = None,
    ) -> tuple[object, str | None, str | None, str | None]:
        """Return (message, plain message or None, exception text, stack text).

        ``rendered`` is ``record.getMessage()`` when the caller already has it (fmt is None).
        """
        fx: logging.Formatter = _DEFAULT_FORMATTER
        appendable = True  # we built the message, so we may append exc/stack to it
        plain: str | None
        if fmt is None:
            plain = rendered if rendered is not None else _get_message(record, errors)
            message: object = plain
        elif isinstance(fmt, logging.Formatter) and type(fmt).format is _FORMATTER_FORMAT:
            # Formatter.format minus the exception/stack appending, via its own hooks.
            fx = fmt
            message = plain = _get_message(record, errors)
            try:
                record.message = plain
                if fmt.usesTime():
                    record.asctime = fmt.formatTime(record, fmt.datefmt)
                message = fmt.formatMessage(record)
            except Exception as exc:
                errors.append(f"format: {_describe(exc)}")
        else:
            appendable = False
            plain = None
            if isinstance(fmt, logging.Formatter):
                fx = fmt
                call: Callable[[logging.LogRecord], object] = fmt.format
            else:
                call = fmt
            try:
                message = call(record)
            except Exception as exc:
                errors.append(f"format: {_describe(exc)}")
                message = plain = _get_message(record, errors)

        exc_text: str | None = None
        try:
            if d.get("exc_info") and not d.get("exc_text"):
                # Cache like Formatter.format does, so other handlers reuse the text.
                record.exc_text = fx.formatException(d["exc_info"])
            value = d.get("exc_text")
            if value:
                exc_text = value if type(value) is str else self._text(value)
        except Exception as exc:
            errors.append(f"exc_info: {_describe(exc)}")
            exc_text = f"<unformattable exception: {_describe(exc)}>"
        stack_text: str | None = None
        try:
            stack = d.get("stack_info")
            if stack:
                value = fx.formatStack(stack)
                stack_text = value if type(value) is str else self._text(value)
        except Exception as exc:
            errors.append(f"stack_info: {_describe(exc)}")
            stack_text = f"<unformattable stack: {_describe(exc)}>"

        if appendable and (self._exception_key is None or self._stack_key is None):
            s = message if type(message) is str else self._text(message)
            if self._exception_key is None and exc_text:
                s = s + exc_text if s[-1:] == "\n" else s + "\n" + exc_text
                exc_text = None
            if self._stack_key is None and stack_text:
                s = s + stack_text if s[-1:] == "\n" else s + "\n" + stack_text
                stack_text = None
            message = s
        if not exc_text:
            exc_text = None
        if self._exception_key is None:
            exc_text = None  # an opaque formatter owns the message; nothing to add
        if not stack_text or self._stack_key is None:
            stack_text = None
        return message, plain, exc_text, stack_text

    def _overrides(
        self, d: dict[str, Any], errors: list[str]
    ) -> tuple[str | None, str | None, list[list[str]] | None]:
        topic = self._topic
        source = self._source
        tag_map: dict[str, str] | None = None
        value = d.get(TOPIC_ATTR)
        if value is not None:
            topic = _cut_ident(value)
        value = d.get(SOURCE_ATTR)
        if value is not None:
            source = _cut_ident(value)
        value = d.get(TAGS_ATTR)
        if value is not None:
            tag_map = dict(self._tags)
            try:
                for k, v in value.items():
                    if v is not None:
                        tag_map[_cut_ident(k, MAX_KEY_BYTES)] = _cut_ident(v)
            except Exception as exc:
                errors.append(f"{TAGS_ATTR}: {_describe(exc)}")
        elif self._tags:
            tag_map = dict(self._tags)
        tags = None if not tag_map else [[k, tag_map[k]] for k in sorted(tag_map)]
        return topic, source, tags

    def _broken(self, record: object, exc: Exception) -> EncodedRecord:
        """The minimal entry for a record that could not be read at all."""
        now = time.time_ns()
        try:
            note = clean_text(_describe(exc), 4 * _NOTE_MAX_CHARS)
            what = f"<unmappable record: {_type_name(record)}>"
        except Exception:
            note, what = "unknown error", "<unmappable record>"
        sec, nsec = divmod(now, _SECOND_NS)
        contents = encode_contents(((self._message_key, what), (ERROR_KEY, note)))
        tags = [[k, v] for k, v in self._tags] or None
        return EncodedRecord(log_field(sec, contents, nsec), sec, self._topic, self._source, tags)


#: The keyword names :class:`RecordMapper` accepts (a handler can split its kwargs with it).
MAPPER_OPTIONS: Final = frozenset(f.name for f in dataclass_fields(RecordMapper) if f.init)


def _no_values(d: dict[str, Any]) -> tuple[Any, ...]:
    return ()


def _get_message(record: logging.LogRecord, errors: list[str]) -> str:
    """``record.getMessage()``, or the documented fallback when ``msg % args`` fails."""
    try:
        message = record.getMessage()
        return message if type(message) is str else _safe_str(message)
    except Exception as exc:
        errors.append(f"message: {_describe(exc)}")
        d = record.__dict__
        return (
            f"<unformattable: {_describe(exc)}> "
            f"msg={_safe_repr(d.get('msg'))} args={_safe_repr(d.get('args'))}"
        )


def _time_of(d: dict[str, Any], errors: list[str]) -> tuple[int, int]:
    """(seconds, nanoseconds) of the record; the current time if the record has none usable."""
    ns_total = d.get(CREATED_NS_ATTR)
    if ns_total is not None and type(ns_total) is int and 0 <= ns_total < _MAX_NS:
        return divmod(ns_total, _SECOND_NS)
    created = d.get("created")
    if type(created) is float and 0.0 <= created < 4294967296.0:  # also rejects NaN
        sec = int(created)
        # created - sec is exact in binary floating point; only the scaling rounds.
        nsec = int((created - sec) * 1e9 + 0.5)
        return sec, nsec if nsec < _SECOND_NS else _SECOND_NS - 1
    try:
        # int, or float subclasses such as numpy.float64; bool is an int but not a time.
        if isinstance(created, (int, float)) and not isinstance(created, bool):
            value = float(created)
            if 0.0 <= value < _UINT32_END:
                sec = int(value)
                return sec, min(round((value - sec) * 1e9), _SECOND_NS - 1)
    except Exception:  # noqa: S110 - an unusable time falls through to the documented fallback
        pass
    errors.append(f"created: invalid {_safe_repr(created)[:64]}, used current time")
    now = time.time_ns()
    return now // _SECOND_NS, now % _SECOND_NS


def _enforce_entry_limit(contents: list[list[str]], max_bytes: int) -> None:
    """Shrink ``contents`` in place to at most ``max_bytes`` (approximate protobuf size).

    The largest values are cut first, all to one common cap (water-filling), so small fields
    such as the level and logger name survive intact; only if that is not enough (thousands of
    fields) are trailing fields dropped. A note under :data:`TRUNCATED_KEY` says what happened.
    """
    sizes = [len(v.encode("utf-8")) for _, v in contents]
    key_sizes = [len(k) + _FIELD_OVERHEAD for k, _ in contents]  # keys are ASCII
    original = sum(sizes) + sum(key_sizes)
    if original <= max_bytes:
        return
    # Room for the note itself: key, overhead and at most 200 ASCII characters.
    target = max_bytes - (MAX_KEY_BYTES + _FIELD_OVERHEAD + 200)
    budget = target - sum(key_sizes)
    # Largest cap C with sum(min(size, C)) <= budget; every value is then cut to <= C.
    lo, hi = 0, max(sizes)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(s, mid) for s in sizes) <= budget:
            lo = mid
        else:
            hi = mid - 1
    cap = max(lo, _MIN_VALUE_BYTES)  # below this a cut value would be all marker
    cut = 0
    total = 0
    for i, size in enumerate(sizes):
        if size > cap:
            contents[i][1] = _truncate_encoded(contents[i][1].encode("utf-8"), cap)
            sizes[i] = len(contents[i][1].encode("utf-8"))
            cut += 1
        total += sizes[i] + key_sizes[i]
    dropped = 0
    while total > target and len(contents) > 1:
        contents.pop()
        total -= sizes.pop() + key_sizes.pop()
        dropped += 1
    note = (
        f"entry of {original} bytes exceeded {max_bytes}: "
        f"{cut} values cut, {dropped} fields dropped"
    )
    seen = {k for k, _ in contents}
    key = TRUNCATED_KEY if TRUNCATED_KEY not in seen else _dedupe(TRUNCATED_KEY, seen)
    contents.append([key, note])
