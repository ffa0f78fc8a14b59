"""The asyncio surface (schemes 3 + 4 of the design note): start and stop flushers on a loop.

Owns :func:`lifespan` for FastAPI / Starlette
(``FastAPI(lifespan=yai_spool.handlers.aio.lifespan(handler))``, or with handler keywords:
``lifespan(mode="asyncio", project=..., ...)``) and :func:`running` (or
``async with AsyncFlusher(handler)``) for any asyncio program. It is the public asyncio
module (release 1 spelled it ``yai_spool.aio``): :class:`AsyncFlusher` (the asyncio driver of
the shared shipping core, :mod:`yai_spool.shipping.aio`) and :class:`AsyncSpoolHandler`
(:mod:`yai_spool.handlers.async_spool`) are re-exported here.

Imports run one way: this module builds handlers with
:func:`yai_spool.handlers.configure.make_handler`, which imports the handler classes, none of
which imports this module; the flusher lives below, in :mod:`yai_spool.shipping`.

Invariants:

- ``emit`` stays synchronous and never touches the network: the flusher task started here
  does the shipping (see :mod:`yai_spool.shipping.aio` for how it leases, ships and backs off).
- Handlers built here from keywords are attached to the given logger on enter and closed on
  exit; handlers passed in are only flushed, never closed: the caller owns them.
- On exit the application's own lifespan (``wrap``) finishes first, so its last records ship
  too; then every flusher drains until ``drain_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from yai_spool.handlers.async_spool import AsyncSpoolHandler
from yai_spool.handlers.configure import make_handler
from yai_spool.handlers.core import asyncio_handlers
from yai_spool.shipping.aio import AsyncFlusher

__all__ = [
    "AsyncFlusher",
    "AsyncSpoolHandler",
    "lifespan",
    "running",
]

internal_log = logging.getLogger("yai_spool.internal")


# --------------------------------------------------------------------------- lifespan


def _is_async_handler(obj: object) -> bool:
    return callable(getattr(obj, "attach_flusher", None)) and (
        isinstance(obj, AsyncSpoolHandler) or getattr(obj, "flusher_mode", None) == "asyncio"
    )


class _Lifespan(contextlib.AbstractAsyncContextManager[Any]):
    """Start flushers on enter, drain and stop them on exit (one application run)."""

    def __init__(
        self,
        app: Any,
        target: Any,
        *,
        config: Mapping[str, Any],
        logger: str | logging.Logger | None,
        drain_timeout: float | None,
        wrap: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] | None,
    ) -> None:
        self.app, self.target, self.config = app, target, config
        self.logger, self.drain_timeout, self.wrap = logger, drain_timeout, wrap
        self.flushers: list[AsyncFlusher] = []
        self.built: list[logging.Handler] = []
        self.inner: contextlib.AbstractAsyncContextManager[Any] | None = None

    def _handlers(self) -> list[Any]:
        target = self.target
        if self.config or isinstance(target, Mapping):
            options = {**(target or {}), **self.config}
            options.setdefault("mode", "asyncio")
            handler = make_handler(**options)
            if not _is_async_handler(handler):
                raise ValueError(f"mode {options['mode']!r} is not an asyncio mode")
            self.built.append(handler)
            return [handler]
        if target is None:
            return [h for h in list(asyncio_handlers) if not getattr(h, "_closed", False)]
        if isinstance(target, list | tuple):
            return list(target)
        return [target]

    async def __aenter__(self) -> Any:
        handlers = self._handlers()
        logger = None
        if self.built:
            logger = (
                self.logger
                if isinstance(self.logger, logging.Logger)
                else logging.getLogger(self.logger or None)
            )
            for handler in self.built:
                logger.addHandler(handler)
        self._logger = logger
        try:
            for handler in handlers:
                if not _is_async_handler(handler):
                    raise TypeError(
                        f"{handler!r} is not an asyncio handler; build it with "
                        "make_handler(mode='asyncio', ...)"
                    )
                flusher = AsyncFlusher(handler, drain_timeout=self.drain_timeout)
                await flusher.start()
                self.flushers.append(flusher)
            if self.wrap is not None:
                self.inner = self.wrap(self.app)
                return await self.inner.__aenter__()
        except BaseException:
            await self._shutdown()
            raise
        return None

    async def __aexit__(self, *exc: Any) -> bool | None:
        try:
            if self.inner is not None:
                return await self.inner.__aexit__(*exc)
        finally:
            await self._shutdown()
        return None

    async def _shutdown(self) -> None:
        # The application's own shutdown (wrap) ran first: its last records ship too.
        flushers, self.flushers = self.flushers, []
        await asyncio.gather(*(f.stop(self.drain_timeout) for f in flushers))
        for handler in self.built:
            if self._logger is not None:
                self._logger.removeHandler(handler)
            handler.close()
        self.built = []


def lifespan(
    target: Any = None,
    /,
    *,
    logger: str | logging.Logger | None = None,
    drain_timeout: float | None = None,
    wrap: Callable[[Any], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    **config: Any,
) -> Callable[[Any], contextlib.AbstractAsyncContextManager[Any]]:
    """A lifespan for FastAPI / Starlette: start the asyncio flushers, drain them at shutdown.

    ``FastAPI(lifespan=yai_spool.handlers.aio.lifespan(handler))``. What it runs:

    - ``handler`` (or a list of them): asyncio handlers you attached to loggers yourself;
    - nothing: every live asyncio handler (e.g. built by ``logging.config.dictConfig`` with
      ``"()": "yai_spool.make_handler", "mode": "asyncio"``);
    - keyword arguments (or one mapping) of :func:`yai_spool.make_handler`: a handler built
      at startup (``mode`` defaults to ``"asyncio"``), attached to ``logger`` (the root logger
      by default) and removed and closed at shutdown.

    ``drain_timeout`` bounds the drain at shutdown (default: each handler's
    ``close_timeout``). ``wrap`` is your own lifespan (``app -> async context manager``): it
    runs inside ours, so records logged by your startup and shutdown ship too, and its
    state is what the lifespan yields.
    """

    def factory(app: Any = None) -> contextlib.AbstractAsyncContextManager[Any]:
        return _Lifespan(
            app, target, config=config, logger=logger, drain_timeout=drain_timeout, wrap=wrap
        )

    return factory


@contextlib.asynccontextmanager
async def running(
    target: Any = None,
    /,
    *,
    logger: str | logging.Logger | None = None,
    drain_timeout: float | None = None,
    **config: Any,
) -> AsyncIterator[list[AsyncFlusher]]:
    """``async with running(handler): ...`` for any asyncio program (same rules as
    :func:`lifespan`); yields the started flushers."""
    manager = _Lifespan(
        None, target, config=config, logger=logger, drain_timeout=drain_timeout, wrap=None
    )
    await manager.__aenter__()
    try:
        yield list(manager.flushers)
    finally:
        await manager.__aexit__(None, None, None)
