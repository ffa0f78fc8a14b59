"""yai-spool's own diagnostics: one line per event on ``yai_spool.internal``, rate-limited.

Owns how the library talks about itself to an application that may never have configured
logging. Python's last-resort handler prints WARNING and above of an unconfigured logger to
stderr *with the traceback* when a record carries ``exc_info``; a flusher retrying a full
disk every few seconds would then fill the application's stderr with tracebacks.

Invariants:

- One line per event by default: the exception's type and message are part of the line.
  The traceback is attached only when ``yai_spool.internal`` is enabled for DEBUG (set that
  logger to DEBUG to get them), so nothing changes for applications that asked for detail.
- Rate limit per key: the first event of a key is reported, then at most one line per
  ``interval`` seconds, which says how many events of that key were not reported since.
- Records of ``yai_spool.*`` loggers are never spooled by our handlers (they would feed back
  into the spool): the handlers filter them out, this module only emits them.
- Never raises: diagnostics must not break the caller.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

__all__ = ["INTERNAL_LOGGER", "describe_exception", "report_internal"]

#: The logger every yai-spool diagnostic goes to.
INTERNAL_LOGGER: Final = "yai_spool.internal"

_log = logging.getLogger(INTERNAL_LOGGER)

#: Default seconds between two reported events of one key.
DEFAULT_INTERVAL: Final = 60.0

_lock = threading.Lock()
# key -> (monotonic time of the last reported event, events not reported since)
_last: dict[str, tuple[float, int]] = {}


def describe_exception(exc: BaseException | None) -> str:
    """``TypeName: message`` on one line (the message cut to 300 characters)."""
    if exc is None:
        return ""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:299] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def report_internal(
    key: str,
    level: int,
    message: str,
    *args: object,
    exc: BaseException | None = None,
    interval: float = DEFAULT_INTERVAL,
) -> bool:
    """Log ``message % args`` once per ``interval`` for ``key``; True if a line was written.

    ``exc`` is summarised on the same line; its traceback is attached only when the internal
    logger is enabled for DEBUG.
    """
    try:
        if not _log.isEnabledFor(level):
            return False
        now = time.monotonic()
        with _lock:
            last, suppressed = _last.get(key, (None, 0))
            if last is not None and now - last < interval:
                _last[key] = (last, suppressed + 1)
                return False
            _last[key] = (now, 0)
        text = message
        if exc is not None:
            text += " (%s)"
            args = (*args, describe_exception(exc))
        if suppressed:
            text += "; %d similar events not reported in the last %.0fs"
            args = (*args, suppressed, interval)
        detail = exc if exc is not None and _log.isEnabledFor(logging.DEBUG) else None
        _log.log(level, text, *args, exc_info=detail)
        return True
    except Exception:  # pragma: no cover - never break the caller over a diagnostic
        return False


def reset_rate_limits() -> None:
    """Forget every key (tests; a forked child starts with its own history anyway)."""
    with _lock:
        _last.clear()
