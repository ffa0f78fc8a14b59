"""The configuration half of ``RecordMapper``: its options, validated and precomputed.

Owns :class:`MapperConfig`, the frozen dataclass :class:`~.mapper.RecordMapper` extends: SDK
``None`` defaults, type and range checks, the field plan (which attributes, which keys), the
JSON/KV extraction settings, the context and OpenTelemetry plans, and the bounded memo
tables. Runs once per handler, never per record.
"""

from __future__ import annotations

import contextvars
import enum
import json
import logging
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from yai_spool.handlers.mapping.entry import (
    _FAST_CHARS,
    _FIELD_OVERHEAD,
    _MIN_VALUE_BYTES,
    _STANDARD_ATTRS,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_MAX_VALUE_BYTES,
    MAX_ENTRY_BYTES_LIMIT,
    MAX_KEY_BYTES,
    _FieldBlock,
)
from yai_spool.handlers.mapping.log_fields import (
    _BLACK_FIELDS,
    _FIELDS_BY_VALUE,
    DEFAULT_FIELDS,
    LogFields,
    _FieldSpec,
)
from yai_spool.handlers.mapping.text import (
    _cut_ident,
    _dedupe,
    _json_default,
    _safe_str,
    sanitize_key,
)
from yai_spool.handlers.otel import resolve_keys, span_ids
from yai_spool.sls.encoding import (
    KeyHeads,
    key_heads,
)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MapperConfig:
    """The options of :class:`RecordMapper` and what ``__post_init__`` derives from them.

    Validated and precomputed once; read on every record by the mapping methods of the
    subclasses (:mod:`.render`, :mod:`.mapper`). See :class:`RecordMapper` for the options.
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


def _no_values(d: dict[str, Any]) -> tuple[Any, ...]:
    return ()
