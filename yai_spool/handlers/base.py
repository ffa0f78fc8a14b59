"""How every yai-spool handler is constructed: options first, ``logging`` registration last.

Owns :class:`ConfiguredHandler`, the base of ``SpoolHandler``, ``MemoryQueueHandler``,
``SyncSLSHandler`` (and so ``AsyncSpoolHandler``); :class:`QueuedHandler`, what the queued
modes add: one flusher (:class:`FlusherLink`), the thread flusher the first record starts,
and the ``flush()``/``close()`` bounds they share with ``logging.shutdown()``; and
:class:`AsyncDrained`, what a queue an asyncio flusher drains adds (the flusher attaches
itself, one at a time). A handler is built from one options object
(:mod:`yai_spool.handlers.options`): either given (``make_handler`` / ``from_toml`` build it
once), or built from the constructor's keywords (``SpoolHandler(project=..., ...)``, a
``dictConfig`` ``class:`` entry).

Invariants:

- Every check runs before ``logging.Handler.__init__``: that call adds the handler to the list
  ``logging.shutdown()`` flushes and closes at exit, so a constructor that raises leaves no
  half-built handler there (its ``close()`` would otherwise meet missing attributes).
- ``inspect.signature(cls)`` and ``help(cls)`` show the real keywords: ``__signature__`` is
  derived from the options class of each subclass.
- A queued handler has one flusher at a time, in ``_flusher`` (set under ``_start_lock``):
  its own thread flusher or the link of the asyncio flusher attached to it. ``emit`` reads it
  once and wakes it; only a record that finds none takes the slow path (``_first_flusher``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar, Protocol

from yai_spool.handlers.core import (
    LazySender,
    ShutdownBound,
    asyncio_handlers,
    handle_unlocked,
    is_shipping_path,
)
from yai_spool.handlers.options import HandlerOptions
from yai_spool.shipping.config import FlusherConfig, FlusherStats
from yai_spool.shipping.cycle import Sender
from yai_spool.shipping.thread import ThreadFlusher
from yai_spool.spool.backend import SpoolBackend

__all__ = ["AsyncDrained", "ConfiguredHandler", "FlusherLink", "QueuedHandler"]

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


class FlusherLink(Protocol):
    """What a handler needs of the flusher draining its queue (thread or asyncio).

    ``ThreadFlusher`` is one; the asyncio flusher hands out one (``AsyncFlusher.link``)
    whose methods are safe to call from any thread.
    """

    @property
    def stats(self) -> FlusherStats: ...

    def wake(self) -> None: ...

    def flush(self, timeout: float) -> bool: ...

    # ThreadFlusher answers whether its threads ended; a handler closes its queue either way.
    def stop(self, drain_timeout: float = 5.0) -> object: ...


class Queue(SpoolBackend, Protocol):
    """A queued handler's queue: the flusher's spool API, reopened in a forked child."""

    def reopen_after_fork(self) -> None: ...


class QueuedHandler(ConfiguredHandler):
    """A handler with a queue and a flusher: ``flush()`` waits for delivery, bounded.

    Subclasses build ``spool`` (their queue) in ``_configure`` and implement
    ``flush_until(timeout)`` and ``_close_queue()``. The thread flusher is named
    ``f"{flusher_thread_name}[project/logstore]"``.
    """

    flusher_thread_name: ClassVar[str] = "yai-spool-flusher"
    flusher_mode: str
    spool: Queue  # a Spool or a MemorySpool

    def _configure(self, options: Any) -> None:  # a QueueOptions (the subclass's options_class)
        self.flusher_mode = options.flusher
        # Plain attributes: callers (and tests) may change the bounds of a built handler.
        self.flush_timeout, self.close_timeout = options.flush_timeout, options.close_timeout
        self._bound = ShutdownBound()  # logging.shutdown(): flush + close share close_timeout
        self.client_options = options.client
        self._sender_factory = options.sender_factory  # None: our client, built on first send
        self._flusher_config: FlusherConfig = options.flusher_config
        self._flusher: FlusherLink | None = None
        self._start_lock = threading.Lock()
        self._start_error = False

    @property
    def flusher_config(self) -> FlusherConfig:
        """Batching and retry of the flusher (may be replaced until the flusher starts)."""
        return self._flusher_config

    @flusher_config.setter
    def flusher_config(self, config: FlusherConfig) -> None:
        self._flusher_config = config

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
        ``flush()`` started. At the deadline the requests in flight are cancelled. A flusher
        that fails to stop does not keep the queue open.
        """
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            flusher, self._flusher = self._flusher, None
        try:
            if flusher is not None:
                flusher.stop(self._bound.close_budget(self.close_timeout))
        except Exception:
            internal_log.debug("stopping the flusher failed", exc_info=True)
        try:
            self._close_queue()
        except Exception:
            internal_log.debug("close failed", exc_info=True)
        finally:
            super().close()

    def _close_queue(self) -> None:
        """Close the queue once the flusher has stopped (see the subclass)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return (
            f"<{type(self).__name__} {self.project}/{self.logstore} {self._repr_fields()} "
            f"({level})>"
        )

    def _repr_fields(self) -> str:
        """What ``repr()`` shows between the destination and the level."""
        return f"flusher={self.flusher_mode}"

    # -- the thread flusher --------------------------------------------------------------

    def _first_flusher(self, record: logging.LogRecord) -> FlusherLink | None:
        """``emit``'s slow path, for a record that found no flusher: start the thread one.

        None when this handler has no thread flusher (``flusher`` is not ``"thread"``: an
        asyncio flusher or the daemon ships), is closed, or could not start one before. A
        sender that cannot even be built (a bad endpoint) is a configuration error: said
        once through ``handleError``, never raised into the application; the record stays
        queued.
        """
        if self.flusher_mode != "thread" or self._closed or self._start_error:
            return None
        try:
            return self._start_flusher()
        except Exception:
            self._start_error = True
            self.handleError(record)
            return None

    def _start_flusher(self) -> FlusherLink | None:
        """The flusher, the thread one started now if there is none (None once closed)."""
        with self._start_lock:
            if self._flusher is None and not self._closed:
                flusher = ThreadFlusher(
                    self.spool,
                    self._make_sender(),
                    self._flusher_config,
                    name=f"{self.flusher_thread_name}[{self.project}/{self.logstore}]",
                )
                flusher.start()
                self._flusher = flusher
            return self._flusher

    def _make_sender(self) -> Sender:
        if self._sender_factory is not None:
            return self._sender_factory()  # the caller's own (tests, the SDK adapter)
        # Our client is built on the first send, on the flusher's thread: httpx loads only
        # in processes that ship, and never inside emit() on an application thread.
        return LazySender(self.client_options.sync_client)

    def _flusher_stats(self) -> dict[str, Any] | None:
        flusher = self._flusher
        return flusher.stats.snapshot() if flusher is not None else None

    def _after_fork_in_child(self) -> None:
        # The parent's flusher does not exist here; the child's starts on its first record.
        self._flusher = None
        self._start_lock = threading.Lock()
        self.spool.reopen_after_fork()


class AsyncDrained(QueuedHandler):
    """A queued handler an ``AsyncFlusher`` can drain (the ``AsyncCapable`` of
    :mod:`yai_spool.shipping.aio`): it attaches its link here, one flusher at a time.

    Without a thread flusher of its own (``flusher`` other than ``"thread"``), a built
    handler is listed in ``core.asyncio_handlers`` for ``lifespan()`` without arguments.
    """

    max_in_flight: int

    def __init__(self, options: HandlerOptions | None = None, /, **keywords: Any) -> None:
        super().__init__(options, **keywords)
        if self.flusher_mode != "thread":
            asyncio_handlers.add(self)  # only built handlers: after logging registered it

    def _configure(self, options: Any) -> None:  # a MemoryOptions or an AsyncSpoolOptions
        super()._configure(options)
        self.max_in_flight = options.max_in_flight
        self._async_sender_factory = options.async_sender_factory or options.client.async_client

    def handle(self, record: logging.LogRecord) -> Any:
        # Before Handler.handle takes the handler lock (see SpoolHandler.handle: shutdown
        # holds it while flushing, and the flusher must never wait for it). Also drops the
        # asyncio flusher task's own records.
        if is_shipping_path(record):
            return False
        return handle_unlocked(self, record)  # the queue has its own lock

    def attach_flusher(self, link: FlusherLink) -> None:
        """Route wake-ups, ``flush()`` and ``close()`` to ``link`` (an asyncio flusher)."""
        with self._start_lock:
            if self._flusher is not None and self._flusher is not link:
                raise RuntimeError(f"{self!r} already has a running flusher")
            self._flusher = link

    def detach_flusher(self, link: FlusherLink) -> None:
        with self._start_lock:
            if self._flusher is link:
                self._flusher = None

    def make_async_sender(self) -> Any:
        """The asyncio client the asyncio flusher ships with."""
        return self._async_sender_factory()
