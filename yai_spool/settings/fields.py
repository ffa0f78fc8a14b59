"""Reading one TOML value at a time, collecting every problem of a file before failing.

Owns :class:`Errors` (all problems of a file, one per line, raised as one
:class:`~yai_spool.sls.errors.ConfigError`) and the typed readers the daemon's and the
handler's ``[handler]`` parsers share: :func:`check_keys` (unknown keys with a "did you mean",
keys that look like credentials), :func:`number`, :func:`integer`, :func:`string`,
:func:`choice`.

Invariants: a reader never raises; a bad value is added to ``errors`` (naming the key as
written in the TOML, what is wrong and how to fix it) and the reader returns the default, so
parsing goes on and one run shows every problem. A key that looks like a credential is
refused with a pointer to where credentials go: they never live in the configuration.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from yai_spool.sls.errors import ConfigError

__all__ = ["Errors", "check_keys", "choice", "integer", "number", "shown", "string", "type_name"]

# Keys that look like credentials get a dedicated message: they must never live in the TOML.
_SECRET_LIKE = frozenset(
    {
        "access_key_id",
        "access_key_secret",
        "access_key",
        "secret",
        "security_token",
        "sts_token",
        "password",
        "token",
    }
)
_CREDENTIALS_FIX = (
    "credentials never go into the configuration file; give them to the daemon with "
    "LoadCredential=sls-access-key-id:... and LoadCredential=sls-access-key-secret:... in the "
    "unit, or the ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET environment "
    "variables"
)


class Errors:
    """Collects every problem of a file so one run shows them all."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, key: str, problem: str, fix: str) -> None:
        self.lines.append(f"{key}: {problem}; {fix}")

    def raise_if_any(self, where: str | None) -> None:
        if self.lines:
            head = f"invalid configuration ({where}):" if where else "invalid configuration:"
            raise ConfigError("\n".join([head, *(f"  {line}" for line in self.lines)]))


def type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}.get(
        type(value), "table" if isinstance(value, Mapping) else type(value).__name__
    )


def shown(value: object) -> str:
    text = repr(value) if not isinstance(value, str) else '"' + value + '"'
    return text if len(text) <= 60 else text[:57] + "..."


def check_keys(
    table: Mapping[str, Any], allowed: Sequence[str], prefix: str, errors: Errors
) -> None:
    for key in table:
        where = f"{prefix}{key}"
        if key.lower() in _SECRET_LIKE or "secret" in key.lower():
            errors.add(where, "credentials are not accepted here", _CREDENTIALS_FIX)
            continue
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]}?" if close else "remove it"
        errors.add(where, "unknown key", f"{hint} (allowed here: {', '.join(sorted(allowed))})")


def number(
    table: Mapping[str, Any],
    key: str,
    where: str,
    errors: Errors,
    default: float,
    *,
    example: str,
    minimum: float = 0.0,
    exclusive: bool = True,
    maximum: float | None = None,
) -> float:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.add(where, f"must be a number of seconds, got {shown(value)}", f"e.g. {example}")
        return default
    low_ok = value > minimum if exclusive else value >= minimum
    if not low_ok or (maximum is not None and value > maximum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        if maximum is not None:
            bound += f" and <= {maximum:g}"
        errors.add(where, f"must be {bound}, got {value!r}", f"e.g. {example}")
        return default
    return float(value)


def integer(
    table: Mapping[str, Any],
    key: str,
    where: str,
    errors: Errors,
    default: int | None,
    *,
    low: int,
    high: int,
    example: str,
) -> int | None:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(where, f"must be an integer, got {shown(value)}", f"e.g. {example}")
        return default
    if not low <= value <= high:
        errors.add(where, f"must be in {low}..{high}, got {value}", f"e.g. {example}")
        return default
    return value


def string(
    table: Mapping[str, Any], key: str, where: str, errors: Errors, *, example: str
) -> str | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str):
        errors.add(where, f"must be a string, got {type_name(value)}", f"e.g. {example}")
        return None
    if not value.strip():
        errors.add(where, "is empty", f"remove the key or set it, e.g. {example}")
        return None
    return value


def choice(
    table: Mapping[str, Any],
    key: str,
    where: str,
    errors: Errors,
    *,
    choices: Sequence[str],
    default: str,
) -> str:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, str) or value.lower() not in choices:
        options = " | ".join(f'"{c}"' for c in choices)
        errors.add(
            where,
            f"must be one of {options}, got {shown(value)}",
            f"e.g. {key} = {options.split(' | ')[0]}",
        )
        return default
    return value.lower()
