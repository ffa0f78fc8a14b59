"""How every yai-spool handler is constructed: options first, ``logging`` registration last.

Owns :class:`ConfiguredHandler`, the base of ``SpoolHandler``, ``MemoryQueueHandler``,
``SyncSLSHandler`` (and so ``AsyncSpoolHandler``), and :class:`QueuedHandler`, what the
queued modes add: the flusher mode and the ``flush()``/``close()`` bounds they share with
``logging.shutdown()``. A handler is built from one options object
(:mod:`yai_spool.handlers.options`): either given (``make_handler`` / ``from_toml`` build it
once), or built from the constructor's keywords (``SpoolHandler(project=..., ...)``, a
``dictConfig`` ``class:`` entry).

Invariants:

- Every check runs before ``logging.Handler.__init__``: that call adds the handler to the list
  ``logging.shutdown()`` flushes and closes at exit, so a constructor that raises leaves no
  half-built handler there (its ``close()`` would otherwise meet missing attributes).
- ``inspect.signature(cls)`` and ``help(cls)`` show the real keywords: ``__signature__`` is
  derived from the options class of each subclass.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from yai_spool.handlers.core import ShutdownBound
from yai_spool.handlers.options import HandlerOptions

__all__ = ["ConfiguredHandler", "QueuedHandler"]

internal_log = logging.getLogger("yai_spool.internal")


class ConfiguredHandler(logging.Handler):
    """A ``logging.Handler`` built from one options object (see the module docstring).

    Subclasses set :attr:`options_class` and implement :meth:`_configure`, which builds
    everything the handler owns from the options; nothing of ``logging.Handler`` (its lock,
    filters, formatter) exists yet while it runs.
    """

    options_class: ClassVar[type[HandlerOptions]] = HandlerOptions
    options: HandlerOptions
    _closed: bool  # logging.Handler's own flag (set by its __init__, and by close())

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__signature__ = cls.options_class.signature()  # type: ignore[attr-defined]

    def __init__(self, options: HandlerOptions | None = None, /, **keywords: Any) -> None:
        name = type(self).__name__
        if options is None:
            options = self.options_class.from_keywords(name, keywords)
        elif keywords:
            raise TypeError(f"{name}() takes an options object or keywords, not both")
        elif not isinstance(options, self.options_class):
            raise TypeError(
                f"{name}() needs {self.options_class.__name__}, got {type(options).__name__}"
            )
        self.options = options
        self.project, self.logstore = options.project, options.logstore
        self.endpoint = options.endpoint
        # Everything that can refuse the arguments ran in the options; _configure builds what
        # the handler owns.
        self._configure(options)
        # Last (see the module docstring): from here on logging.shutdown() reaches us.
        super().__init__(options.level)

    def _configure(self, options: Any) -> None:
        """Build the handler's own state from ``options`` (may raise; nothing to undo)."""
        raise NotImplementedError


class QueuedHandler(ConfiguredHandler):
    """A handler with a queue and a flusher: ``flush()`` waits for delivery, bounded.

    Subclasses implement ``flush_until(timeout)`` and ``_close_queue()``, and keep their
    flusher in ``_flusher`` under ``_start_lock``.
    """

    flusher_mode: str
    _flusher: Any
    _start_lock: threading.Lock

    def _configure(self, options: Any) -> None:  # a QueueOptions (the subclass's options_class)
        self.flusher_mode = options.flusher
        # Plain attributes: callers (and tests) may change the bounds of a built handler.
        self.flush_timeout, self.close_timeout = options.flush_timeout, options.close_timeout
        self._bound = ShutdownBound()  # logging.shutdown(): flush + close share close_timeout

    def flush(self) -> None:
        """Wait (at most ``flush_timeout``) until records emitted so far are delivered.

        Called by ``logging.shutdown()``, it waits at most ``close_timeout`` and the
        ``close()`` that follows gets only what is left of that deadline.
        """
        if self._closed:
            return  # logging.shutdown() flushes closed handlers too
        self.flush_until(self._bound.flush_timeout(self.flush_timeout, self.close_timeout))

    def flush_until(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for delivery; True if everything was delivered."""
        raise NotImplementedError

    def close(self) -> None:
        """Drain until ``close_timeout``, stop the flusher, close the queue (idempotent).

        During ``logging.shutdown()`` the drain gets only what is left of the deadline its
        ``flush()`` started. At the deadline the requests in flight are cancelled.
        """
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            flusher, self._flusher = self._flusher, None
        try:
            if flusher is not None:
                flusher.stop(self._bound.close_budget(self.close_timeout))
            self._close_queue()
        except Exception:
            internal_log.debug("close failed", exc_info=True)
        finally:
            super().close()

    def _close_queue(self) -> None:
        """Close the queue once the flusher has stopped (see the subclass)."""
        raise NotImplementedError
