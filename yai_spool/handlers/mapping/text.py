"""Value coercion: any Python object -> bounded, valid UTF-8 text; any name -> a valid key.

Owns the total rendering rules of the package docstring (surrogates, bytes, JSON of
containers with cycles or huge ints, ``str()`` that raises) and key sanitising. Pure
functions; each never raises on hostile input.
"""

from __future__ import annotations

import json
import re

from yai_spool.handlers.mapping.entry import (
    _JSON_MAX_DEPTH,
    _KEY_BAD_CHAR,
    _KEY_OK,
    _NOTE_MAX_CHARS,
    _SURROGATE,
    MAX_KEY_BYTES,
    MAX_TOPIC_BYTES,
)
from yai_spool.sls.model import RESERVED_KEYS


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
