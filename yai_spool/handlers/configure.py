"""One configuration surface for every delivery mode: keywords, ``dictConfig``, or TOML.

Owns the choice of a handler from a ``mode`` name and the translation of plain values
(strings, numbers, tables) into its constructor arguments. Three ways in, one rulebook:

- Python: ``yai_spool.make_handler(mode="memory", project=..., logstore=..., endpoint=...)``.
- ``logging.config.dictConfig``: a handler entry
  ``{"()": "yai_spool.make_handler", "mode": "asyncio", "project": ..., ...}``.
- TOML: ``yai_spool.from_toml("/etc/yai-spool/yai-spool.toml")`` reads a ``[handler]`` table;
  the daemon's ``[defaults]`` (endpoint, project, logstore, topic) and ``[shipping]``
  (compression, signature_version, signature_method, region, batch_size, batch_bytes, linger,
  max_age) apply
  under it, so one file can describe an application and the ``yai-spool run`` daemon that
  drains its spool (``mode = "daemon"``).

Modes (``mode=``):

==========  =========================================================================
``spool``   durable spool + flusher thread in the process (``SpoolHandler``). Default.
``daemon``  durable spool only; ``yai-spool run`` ships it (``SpoolHandler(flusher="none")``)
``memory``  bounded in-memory queue + batching flusher thread (``MemoryQueueHandler``)
``sync``    one PutLogs call per record inside ``emit`` (``SyncSLSHandler``)
``asyncio`` a queue drained by an asyncio task (:mod:`yai_spool.handlers.aio`); ``queue="spool"``
            (durable, default) or ``queue="memory"``
==========  =========================================================================

Invariants: unknown keys are refused with the mode's accepted keys and a did-you-mean; keys
that look like credentials are refused in TOML (credentials come from the environment, a
``credentials_provider`` or explicit keyword arguments, never from a file); every error is a
:class:`~yai_spool.sls.errors.ConfigError` naming the key and the fix.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from yai_spool.handlers.async_spool import AsyncSpoolHandler
from yai_spool.handlers.base import ConfiguredHandler
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.handlers.memory import MemoryQueueHandler
from yai_spool.handlers.sync import SyncSLSHandler
from yai_spool.settings.fields import Errors, check_keys
from yai_spool.settings.sections import ENV_CONFIG, parse_destination, parse_shipping
from yai_spool.sls.errors import ConfigError

__all__ = ["MODES", "from_toml", "handler_class", "make_handler"]

#: Mode name -> what it builds (see the module docstring).
MODES: Mapping[str, str] = {
    "spool": "durable spool, flusher thread in this process",
    "daemon": "durable spool, shipped by `yai-spool run`",
    "memory": "bounded in-memory queue, batching flusher thread",
    "sync": "one PutLogs call per record, inside emit",
    "asyncio": "queue drained by an asyncio task (queue='spool' or 'memory')",
}
QUEUES = ("spool", "memory")

# [shipping] keys of the daemon's TOML and the handler keyword each becomes.
_SHIPPING_KEYS = {
    "compression": "compression",
    "signature_version": "signature_version",
    "signature_method": "signature_method",
    "region": "region",
    "batch_size": "batch_size",
    "batch_bytes": "batch_bytes",
    "linger": "linger",
    "max_age": "retry",
}


def handler_class(
    mode: str, queue: str | None = None
) -> tuple[type[ConfiguredHandler], dict[str, Any]]:
    """The handler class of a mode and the keywords the mode fixes (e.g. ``flusher``)."""
    if mode not in MODES:
        close = difflib.get_close_matches(str(mode), MODES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"mode: unknown mode {mode!r}; {hint}choose one of {', '.join(MODES)}")
    if queue is not None and mode != "asyncio":
        raise ConfigError(f"queue: only mode='asyncio' takes a queue (mode is {mode!r})")
    if mode == "spool":
        return SpoolHandler, {"flusher": "thread"}
    if mode == "daemon":
        return SpoolHandler, {"flusher": "none"}
    if mode == "memory":
        return MemoryQueueHandler, {"flusher": "thread"}
    if mode == "sync":
        return SyncSLSHandler, {}
    queue = queue or "spool"
    if queue not in QUEUES:
        raise ConfigError(f"queue: must be 'spool' (durable) or 'memory', got {queue!r}")
    if queue == "memory":
        return MemoryQueueHandler, {"flusher": "asyncio"}
    return AsyncSpoolHandler, {}


def accepted_keys(mode: str, queue: str | None = None) -> tuple[str, ...]:
    """The keyword arguments a mode accepts (what ``make_handler`` and ``[handler]`` take)."""
    cls, fixed = handler_class(mode, queue)
    return tuple(k for k in cls.options_class.keywords() if k not in fixed)


def make_handler(
    mode: str = "spool", *, queue: str | None = None, **options: Any
) -> logging.Handler:
    """Build the handler of ``mode`` from plain keyword values (also a ``dictConfig`` factory).

    Args:
        mode: ``spool`` (default), ``daemon``, ``memory``, ``sync`` or ``asyncio``.
        queue: for ``asyncio`` only: ``spool`` (durable, default) or ``memory``.
        options: the chosen handler's keyword arguments. Plain values are accepted where
            the handler wants objects: ``retry`` as a mapping of ``RetryPolicy`` fields,
            ``timeouts`` as a mapping of ``ClientTimeouts`` fields or a number of seconds,
            ``level`` as a level name.

    Raises:
        ConfigError: unknown mode, or keys the mode does not take (with the accepted ones).
    """
    cls, fixed = handler_class(mode, queue)
    allowed = accepted_keys(mode, queue)
    unknown = [k for k in options if k not in allowed]
    if unknown:
        lines = []
        for key in unknown:
            if key in fixed or key in cls.options_class.fixed():
                lines.append(f"{key}: fixed by mode={mode!r}; remove it")
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "remove it"
            lines.append(f"{key}: not an option of mode={mode!r}; {hint}")
        raise ConfigError(
            "invalid handler options:\n  "
            + "\n  ".join(lines)
            + f"\n  (mode={mode!r} takes: {', '.join(sorted(allowed))})"
        )
    try:
        # Built once, here: plain values (retry and timeouts mappings, level names) become
        # objects and every check runs in the options (handlers.options).
        return cls(cls.options_class(**fixed, **options))
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"mode={mode!r}: {exc}") from exc


def from_toml(
    path: str | os.PathLike[str] | None = None,
    *,
    section: str = "handler",
    **overrides: Any,
) -> logging.Handler:
    """Build the handler described by the ``[handler]`` table of a TOML file.

    ``path`` defaults to ``$YAI_SPOOL_CONFIG`` (the daemon's variable). ``[defaults]`` and
    ``[shipping]`` of the same file fill what ``[handler]`` leaves out (only keys the mode
    takes); keyword ``overrides`` win over the file (e.g. ``credentials_provider=...``). A
    relative ``spool_path`` is relative to the file.

    Example::

        [handler]
        mode = "asyncio"
        queue = "memory"
        project = "my-project"
        logstore = "app-logs"
        endpoint = "https://cn-hangzhou.log.aliyuncs.com"
        max_in_flight = 4
        retry = { max_age = 3600 }

    Raises:
        ConfigError: unreadable file, TOML syntax, a missing table, unknown keys or keys that
            look like credentials (every problem of the file, one per line).
    """

    chosen = path if path is not None else os.environ.get(ENV_CONFIG) or None
    if chosen is None:
        raise ConfigError(f"from_toml: no path given and {ENV_CONFIG} is not set")
    source = Path(os.path.abspath(chosen))
    try:
        with open(source, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{source} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {source} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML syntax error: {exc}") from None
    table = data.get(section)
    if not isinstance(table, Mapping):
        raise ConfigError(
            f"{source}: no [{section}] table; add one, e.g. [{section}] with "
            'mode = "spool", project = "my-project", logstore = "app-logs"'
        )
    errors = Errors()
    mode = str(overrides.get("mode", table.get("mode", "spool")))
    queue = overrides.get("queue", table.get("queue"))
    try:
        allowed = accepted_keys(mode, queue)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {section}.{exc}") from None
    check_keys(table, ("mode", "queue", *allowed), f"{section}.", errors)

    options: dict[str, Any] = {}
    defaults = data.get("defaults")
    if isinstance(defaults, Mapping):
        dest = parse_destination(
            {
                k: v
                for k, v in defaults.items()
                if k in ("endpoint", "project", "logstore", "topic")
            },
            "defaults.",
            errors,
        )
        for key in ("endpoint", "project", "logstore", "topic"):
            value = getattr(dest, key)
            if value is not None and key in allowed:
                options[key] = value
    shipping_raw = data.get("shipping")
    if isinstance(shipping_raw, Mapping):
        shipping = parse_shipping(shipping_raw, errors)
        for key, target in _SHIPPING_KEYS.items():
            if key not in shipping_raw or target not in allowed:
                continue
            value = getattr(shipping, key)
            if key == "max_age":
                options["retry"] = {"max_age": value}
            elif key == "compression":
                options[target] = value.value
            else:
                options[target] = value
    errors.raise_if_any(str(source))

    for key, value in table.items():
        if key in ("mode", "queue"):
            continue
        if key == "retry" and isinstance(value, Mapping) and isinstance(options.get("retry"), dict):
            options["retry"] = {**options["retry"], **value}
        else:
            options[key] = value
    if isinstance(options.get("spool_path"), str):
        options["spool_path"] = source.parent / os.path.expanduser(options["spool_path"])
    options.update({k: v for k, v in overrides.items() if k not in ("mode", "queue")})
    try:
        return make_handler(mode, queue=queue, **options)
    except ConfigError as exc:
        raise ConfigError(f"{source} [{section}]: {exc}") from None
