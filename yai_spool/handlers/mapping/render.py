"""Rendering one record's parts: values, extras, message, JSON/KV extraction, limits.

Owns :class:`Rendering`, the methods of ``RecordMapper`` that turn one part of a record into
contents (the selected fields' block, values and extras, the message with its exception and
stack, ``extract_json``/``extract_kv``, the per-record overrides, the unmappable fallback),
and the per-entry rules: the record's time, the entry size limit. Called from the hot path
in :mod:`.mapper`; each total (a failure becomes a note under ``yai_spool_error``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from yai_spool.handlers.mapping.config import MapperConfig
from yai_spool.handlers.mapping.entry import (
    _CACHEABLE_TYPES,
    _DEFAULT_FORMATTER,
    _FIELD_BLOCKS_MAX,
    _FIELD_OVERHEAD,
    _FORMATTER_FORMAT,
    _KEY_CACHE_MAX,
    _MAX_NS,
    _MIN_VALUE_BYTES,
    _NOTE_MAX_CHARS,
    _SECOND_NS,
    _UINT32_END,
    CREATED_NS_ATTR,
    ERROR_KEY,
    MAX_KEY_BYTES,
    SOURCE_ATTR,
    TAGS_ATTR,
    TOPIC_ATTR,
    TRUNCATED_KEY,
    EncodedRecord,
    _FieldBlock,
)
from yai_spool.handlers.mapping.text import (
    _cut_ident,
    _dedupe,
    _describe,
    _jsonable,
    _safe_repr,
    _safe_str,
    _truncate_encoded,
    _type_name,
    clean_text,
    sanitize_key,
)
from yai_spool.sls.encoding import (
    encode_contents,
    log_field,
)


class Rendering(MapperConfig):
    """The rendering methods of :class:`~.mapper.RecordMapper` (see the module docstring)."""

    __slots__ = ()

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
