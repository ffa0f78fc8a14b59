"""structlog -> ``logging`` -> yai-spool: the last processor of a structlog chain.

Owns :func:`render_to_log_kwargs`, a drop-in for ``structlog.stdlib.render_to_log_kwargs``
with one difference that matters for shipping key-values as SLS fields: keys that
``logging`` refuses in ``extra=`` do not crash the caller. ``logging.Logger.makeRecord``
raises ``KeyError("Attempt to overwrite 'name' in LogRecord")`` for any key that is a
``LogRecord`` attribute (``name``, ``message``, ``filename``, ``module``, ``args``,
``process``...), so with structlog's own renderer ``log.info("login", name=user)`` raises
into the application. Here such keys travel in the record's ``sls_extra`` mapping, which
the yai-spool mapper ships like any other extra (``name`` becomes ``name_2`` in SLS,
because ``name`` is the logger-name field; ``filename`` stays ``filename``).

Recommended configuration (README, tested end to end in ``tests/structlog_pipeline``)::

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,      # bound key-values
            structlog.stdlib.filter_by_level,             # skip disabled levels early
            yai_spool.handlers.structlog.render_to_log_kwargs,     # last: hand over to logging
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

Leave out renderers and processors that duplicate what the record already carries: the
record has its time, level and logger name (SLS fields ``levelname``, ``name``), and
``exc_info`` goes to ``logging`` so the exception arrives as ``exc_text`` (do not add
``format_exc_info``: it would turn the traceback into an ``exception`` string field).

Invariants: pure, no I/O, never imports structlog (it is not a dependency); the event dict
it returns is consumed by ``logging`` only.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Final

from yai_spool.handlers.mapping import EXTRA_ATTR

__all__ = ["LOG_KWARG_NAMES", "RESERVED_EXTRA_KEYS", "render_to_log_kwargs"]

#: Keyword arguments of ``Logger.log`` that are passed as themselves, not as ``extra``
#: (as structlog's ``LOG_KWARG_NAMES``).
LOG_KWARG_NAMES: Final = ("exc_info", "stack_info", "stacklevel")

#: Keys ``makeRecord`` refuses in ``extra=``: the attributes of a fresh ``LogRecord`` (computed,
#: so a new Python's attributes are covered) plus ``message`` and ``asctime``.
RESERVED_EXTRA_KEYS: Final = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime"}


def render_to_log_kwargs(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """Turn the event dict into ``Logger.log`` keyword arguments (the chain's last processor).

    ``event`` becomes the message, ``exc_info`` / ``stack_info`` / ``stacklevel`` stay
    keyword arguments, every other key goes to ``extra`` (an SLS field each), and keys
    ``logging`` would refuse there go to ``extra["sls_extra"]`` (still an SLS field each).
    """
    kwargs: dict[str, Any] = {"msg": event_dict.pop("event", "")}
    for name in LOG_KWARG_NAMES:
        if name in event_dict:
            kwargs[name] = event_dict.pop(name)
    reserved = {k: event_dict.pop(k) for k in [k for k in event_dict if k in RESERVED_EXTRA_KEYS]}
    if reserved:
        event_dict[EXTRA_ATTR] = reserved
    kwargs["extra"] = event_dict
    return kwargs
