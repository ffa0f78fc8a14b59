"""Turn a :class:`logging.LogRecord` into one SLS log entry: pure, total, and cheap.

This package owns the mapping from a record to a *SpoolEntry*, the JSON-able dict the spool
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

Layout (each module one idea; this package re-exports the public names):
:mod:`.log_fields` (``LogFields``, the SDK's field names), :mod:`.entry` (the entry, its
keys and limits), :mod:`.text` (value coercion and key sanitising), :mod:`.config` (the
options, validated and precomputed), :mod:`.render` (values, extras, message, JSON/KV
extraction, limits), :mod:`.mapper` (``RecordMapper`` and its hot path).

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

from yai_spool.handlers.mapping.entry import (  # noqa: F401
    _NOTHING_SEEN,
    _STANDARD_ATTRS,
    CREATED_NS_ATTR,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
    ERROR_KEY,
    EXTRA_ATTR,
    MAX_ENTRY_BYTES_LIMIT,
    MAX_KEY_BYTES,
    MAX_TOPIC_BYTES,
    SOURCE_ATTR,
    TAGS_ATTR,
    TOPIC_ATTR,
    TRUNCATED_KEY,
    EncodedRecord,
    SpoolEntry,
)
from yai_spool.handlers.mapping.log_fields import DEFAULT_FIELDS, LogFields
from yai_spool.handlers.mapping.mapper import MAPPER_OPTIONS, RecordMapper
from yai_spool.handlers.mapping.text import clean_text, sanitize_key

# The public names (and two sentinels the property tests read), from the modules owning them.
from yai_spool.sls.model import RESERVED_KEYS

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
    "EncodedRecord",
    "LogFields",
    "RecordMapper",
    "SpoolEntry",
    "clean_text",
    "sanitize_key",
]
