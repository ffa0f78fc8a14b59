"""``RecordMapper``: a ``LogRecord`` -> its stored SLS log, on the application's logging path.

Owns the hot path: :meth:`RecordMapper.encode` (the fast path for the common record, and the
general one), :meth:`RecordMapper.map`, and :data:`MAPPER_OPTIONS`. The options and their
checks are :class:`~.config.MapperConfig`; the rendering of each part is
:class:`~.render.Rendering`. The contract is the package docstring's
(:mod:`yai_spool.handlers.mapping`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields as dataclass_fields
from typing import Any, Final

from yai_spool.handlers.context import CONTEXT_ATTR, SPAN_ATTR, RequestContext
from yai_spool.handlers.mapping.entry import (
    _FIELD_OVERHEAD,
    _LAYOUTS_MAX,
    _N_STANDARD,
    _NO_FIELDS,
    _NOT_EXTRA,
    _NOTE_MAX_CHARS,
    _NOTHING_SEEN,
    _OVERRIDE_ATTRS,
    _SECOND_NS,
    _UNSEEN,
    CREATED_NS_ATTR,
    ERROR_KEY,
    EXTRA_ATTR,
    MAX_KEY_BYTES,
    EncodedRecord,
    SpoolEntry,
    _new_encoded,
)
from yai_spool.handlers.mapping.render import (
    Rendering,
    _enforce_entry_limit,
    _get_message,
    _time_of,
)
from yai_spool.handlers.mapping.text import _dedupe, _describe, clean_text
from yai_spool.sls.encoding import (
    KeyHeads,
    content,
    encode_contents,
    key_heads,
    log_field,
    log_field_of,
)


class RecordMapper(Rendering):
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

    __slots__ = ()

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
        count = 1 + block.n_pairs

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

    def _plain_pairs(self, items: Iterable[tuple[object, Any]], out: list[Any]) -> int:
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
                if len(raw) > fast or not raw.isascii():
                    if clean_text(raw, limit) is not raw:
                        return -1
                    bulk += len(value)
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
        count = (head is not None) + block.n_pairs + len(tail)
        if 4 * bulk + count * (fast + MAX_KEY_BYTES + _FIELD_OVERHEAD) > self.max_entry_bytes:
            # Possibly too large: measure and cut on the full list of pairs (rare).
            contents = [[self._message_key, head]] if head is not None else []
            contents += [list(p) for p in block.pairs]
            contents += tail
            _enforce_entry_limit(contents, self.max_entry_bytes)
            encoded = encode_contents(contents)
        else:
            if head is None and not block.n_pairs and not tail:
                head = ""  # everything was dropped by the *_drop_message options
            parts = [] if head is None else [encode_contents(((self._message_key, head),))]
            parts.append(block.data)
            if tail:
                parts.append(encode_contents(tail))
            encoded = b"".join(parts)
        return EncodedRecord(log_field(sec, encoded, nsec), sec, topic, source, tags)


#: The keyword names :class:`RecordMapper` accepts (a handler can split its kwargs with it).
MAPPER_OPTIONS: Final = frozenset(f.name for f in dataclass_fields(RecordMapper) if f.init)
