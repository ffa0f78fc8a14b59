"""The asyncio flusher against the emulator: memory and durable queues, outages, lifespans."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from modes_support import (
    DEADLINE,
    FAST_RETRY,
    configured,
    destination,
    log_numbered,
    make_logger,
    messages,
    stored,
)

import yai_spool
from yai_spool.emulator import Emulator
from yai_spool.handlers.aio import AsyncFlusher, AsyncSpoolHandler, lifespan, running
from yai_spool.handlers.context import bind
from yai_spool.spool import Spool


def async_handler(emu: Emulator, queue: str, tmp_path: Path, **options: Any) -> logging.Handler:
    settings: dict[str, Any] = {
        "batch_size": 20,
        "linger": 0.01,
        "retry": FAST_RETRY,
        "close_timeout": 5.0,
        **options,
    }
    if queue == "spool":
        settings.setdefault("spool_path", tmp_path / "aio.spool")
    return yai_spool.make_handler("asyncio", queue=queue, **destination(emu, **settings))


def async_logger(
    emu: Emulator, queue: str, tmp_path: Path, **options: Any
) -> tuple[logging.Handler, logging.Logger]:
    """An :func:`async_handler` and a fresh logger writing only to it."""
    handler = async_handler(emu, queue, tmp_path, **options)
    return handler, make_logger(handler)


async def until(predicate: Any, timeout: float = DEADLINE) -> bool:
    """Poll ``predicate`` from the loop (yielding between looks) until true or timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(0.01)  # a poll interval, not a synchronisation point
    return True


async def flushed(flusher: AsyncFlusher) -> bool:
    """Flush until it succeeds (each flush answers after one failed attempt)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while loop.time() < deadline:
        if await flusher.flush(1.0):
            return True
    return False


@pytest.mark.parametrize("queue", ["memory", "spool"])
def test_ships_from_a_task_carrying_task_context(emu: Emulator, tmp_path: Path, queue: str) -> None:
    handler, logger = async_logger(emu, queue, tmp_path)

    async def request(i: int) -> None:
        with bind(trace_id=f"trace-{i}"):
            await asyncio.sleep(0)
            logger.info("request %d", i)
            await asyncio.create_task(asyncio.to_thread(logger.info, "worker of %d", i))

    async def main() -> None:
        async with AsyncFlusher(handler) as flusher:
            await asyncio.gather(*(request(i) for i in range(30)))
            assert await flusher.flush(DEADLINE)
            assert flusher.stats.requests < 60 // 2  # batched

    asyncio.run(main())
    logs = stored(emu)
    assert len(logs) == 60
    for log in logs:
        number = (log.text("message") or "").split()[-1]
        assert log.text("trace_id") == f"trace-{number}"
    handler.close()


def test_in_flight_requests_are_bounded(emu: Emulator, tmp_path: Path) -> None:
    handler, logger = async_logger(emu, "memory", tmp_path, batch_size=10, max_in_flight=2)

    async def main() -> None:
        emu.faults.hang()
        async with AsyncFlusher(handler) as flusher:
            log_numbered(logger, "held", 100)
            assert await asyncio.to_thread(emu.faults.wait_held, 2, DEADLINE)
            # Two requests hang; the semaphore keeps every other batch queued.
            stats = handler.spool.stats()  # type: ignore[attr-defined]
            assert (stats.active_leases, emu.faults.held) == (2, 2)
            assert stats.ready_records == 80
            emu.faults.clear()
            assert await flushed(flusher)
        assert len(messages(emu)) == 100

    asyncio.run(main())
    handler.close()


def test_an_outage_is_retried_and_own_records_are_not_queued(emu: Emulator, tmp_path: Path) -> None:
    handler = async_handler(emu, "memory", tmp_path)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # httpx logs every request at INFO, from the flusher task

    async def main() -> None:
        emu.faults.fail_next(2, error_code="ServerBusy", status=503)
        async with running(handler) as (flusher,):
            for i in range(25):
                logging.getLogger("app").info("storm %d", i)
            assert await flushed(flusher)
            assert flusher.stats.retried >= 1

    try:
        asyncio.run(main())
    finally:
        root.removeHandler(handler)
    logs = stored(emu)
    names = {log.text("name") for log in logs}
    assert not {n for n in names if n and n.startswith(("httpx", "httpcore", "yai_spool"))}
    storm = sorted(log.text("message") or "" for log in logs if log.text("name") == "app")
    assert storm == sorted(f"storm {i}" for i in range(25))
    handler.close()


def test_other_threads_wake_the_flusher_and_flush_from_them(emu: Emulator, tmp_path: Path) -> None:
    handler, logger = async_logger(emu, "memory", tmp_path, linger=0.0)
    answers: list[bool] = []

    def worker() -> None:
        log_numbered(logger, "threaded", 40)
        answers.append(handler.flush_until(DEADLINE))  # blocks this thread, not the loop

    async def main() -> None:
        async with AsyncFlusher(handler):
            thread = threading.Thread(target=worker)
            thread.start()
            assert await until(lambda: not thread.is_alive())
            # On the loop's own thread a blocking flush would deadlock: it answers False.
            assert handler.flush_until(DEADLINE) is False

    asyncio.run(main())
    assert answers == [True]
    assert len(messages(emu)) == 40
    handler.close()


def test_stop_during_an_outage_keeps_durable_records_on_disk(emu: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "outage.spool"
    handler, logger = async_logger(emu, "spool", tmp_path, spool_path=path, timeouts=0.5)

    async def main() -> None:
        emu.faults.down()
        flusher = AsyncFlusher(handler, drain_timeout=0.3)
        await flusher.start()
        log_numbered(logger, "kept", 50)
        assert not await flusher.flush(DEADLINE)  # one failed attempt answers
        await flusher.stop()  # bounded by the drain deadline despite the outage
        assert not flusher.running

    asyncio.run(main())
    handler.close()
    with Spool.open_readonly(path) as spool:
        stats = spool.stats()
    assert (stats.ready_records, stats.leased_records, stats.dead_records) == (50, 0, 0)
    # The next run ships them.
    emu.faults.up()
    again = async_handler(emu, "spool", tmp_path, spool_path=path)

    async def rerun() -> None:
        async with AsyncFlusher(again) as flusher:
            assert await flushed(flusher)

    asyncio.run(rerun())
    assert sorted(messages(emu)) == sorted(f"kept {i}" for i in range(50))
    again.close()


def test_stop_during_an_outage_counts_memory_loss(emu: Emulator, tmp_path: Path) -> None:
    handler, logger = async_logger(emu, "memory", tmp_path, timeouts=0.5, close_timeout=0.3)

    async def main() -> None:
        emu.faults.down()
        async with AsyncFlusher(handler):
            log_numbered(logger, "lost", 30)
        # Stopped after the drain deadline: the records are still queued in memory ...

    asyncio.run(main())
    assert handler.stats()["spool"].ready_records == 30
    handler.close()  # ... and lost now, counted
    assert handler.stats()["spool"].dropped == {"unsent_at_close": 30}
    emu.faults.up()


def test_lifespan_from_keywords_wraps_the_app_lifespan(emu: Emulator, tmp_path: Path) -> None:
    app_logger = logging.getLogger("lifespan-app")
    app_logger.setLevel(logging.INFO)
    seen: list[Any] = []

    @contextlib.asynccontextmanager
    async def app_lifespan(app: object) -> AsyncIterator[dict[str, str]]:
        app_logger.info("app starting")
        yield {"state": "ready"}
        app_logger.info("app stopping")

    factory = lifespan(
        logger="lifespan-app",
        wrap=app_lifespan,
        queue="memory",
        **destination(emu, linger=0.01, retry=FAST_RETRY),
    )

    async def main() -> None:
        async with factory("the-app") as state:
            seen.append(state)
            (handler,) = app_logger.handlers
            seen.append(handler)
            app_logger.info("serving")

    asyncio.run(main())
    assert seen[0] == {"state": "ready"}
    assert app_logger.handlers == []  # removed, and closed after the drain
    assert seen[1].stats()["spool"].dropped == {}
    assert messages(emu) == ["app starting", "serving", "app stopping"]


def test_lifespan_without_arguments_starts_dictconfig_handlers(
    emu: Emulator, tmp_path: Path
) -> None:
    async def main(handler: logging.Handler, logger: logging.Logger) -> None:
        async with lifespan()(None):
            logger.info("started by lifespan()")
            assert await until(lambda: len(stored(emu)) == 1)
            with pytest.raises(RuntimeError, match="already has a running flusher"):
                await AsyncFlusher(handler).start()

    with configured(
        "dict-aio",
        mode="asyncio",
        spool_path=str(tmp_path / "dict.spool"),
        linger=0.01,
        **destination(emu),
    ) as (logger, handler):
        assert isinstance(handler, AsyncSpoolHandler)
        asyncio.run(main(handler, logger))
        assert handler.stats()["flusher"] is None  # detached at shutdown
    assert messages(emu) == ["started by lifespan()"]
