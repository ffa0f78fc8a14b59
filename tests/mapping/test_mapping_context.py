"""Request context: binding, threads, asyncio tasks, and what the mapper ships from it."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import logging.handlers
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from mapping_support import contents_dict, make_record

from yai_spool.handlers import context
from yai_spool.handlers.context import (
    ContextFilter,
    RequestContext,
    bind,
    current,
    get_trace_id,
    propagate,
    reset,
    set_trace_id,
    update,
)
from yai_spool.handlers.mapping import RecordMapper

MAPPER = RecordMapper(fields=[])


def ctx_fields(
    record: logging.LogRecord | None = None, mapper: RecordMapper = MAPPER
) -> dict[str, str]:
    """The contents of a mapped record minus the message."""
    fields = contents_dict(mapper.map(record or make_record()))
    fields.pop("message")
    return fields


class TestBinding:
    def test_bind_nests_and_restores(self) -> None:
        """Inner bind sees the union; leaving a block restores the outer mapping."""
        assert current() == {}
        with bind(user="u1", trace_id="t1") as outer:
            assert dict(outer) == {"user": "u1", "trace_id": "t1"}
            with bind(trace_id="t2", extra=1):
                assert dict(current()) == {"user": "u1", "trace_id": "t2", "extra": 1}
            assert dict(current()) == {"user": "u1", "trace_id": "t1"}
        assert current() == {}

    def test_bound_mapping_is_immutable(self) -> None:
        """The context value cannot be mutated in place."""
        with bind(a=1), pytest.raises(TypeError):
            current()["a"] = 2  # type: ignore[index]

    def test_none_removes_a_key(self) -> None:
        """Binding None removes the key for the block."""
        with bind(a=1, b=2), bind(a=None):
            assert dict(current()) == {"b": 2}

    def test_trace_id_helpers(self) -> None:
        """set_trace_id/get_trace_id store the id under "trace_id"; reset restores."""
        assert get_trace_id() is None
        token = set_trace_id("abc")
        try:
            assert get_trace_id() == "abc"
            assert current()[context.TRACE_ID_KEY] == "abc"
        finally:
            reset(token)
        assert get_trace_id() is None

    def test_update_and_reset_for_middleware(self) -> None:
        """update() returns a token; reset(token) undoes exactly that update."""
        token = update(request="r1")
        assert dict(current()) == {"request": "r1"}
        reset(token)
        assert current() == {}

    def test_bind_as_decorator(self) -> None:
        """bind() also decorates synchronous functions."""

        @bind(job="nightly")
        def work() -> dict[str, object]:
            return dict(current())

        assert work() == {"job": "nightly"}
        assert current() == {}


class TestMapperReadsContext:
    def test_bound_fields_are_shipped(self) -> None:
        """Every bound field becomes a content, values rendered like extras."""
        with bind(trace_id="t-1", user_id=7, roles=["a", "b"]):
            assert ctx_fields() == {"trace_id": "t-1", "user_id": "7", "roles": '["a", "b"]'}

    def test_extra_wins_the_key_over_context(self) -> None:
        """An explicit extra keeps the key; the context value gets the _2 suffix."""
        with bind(trace_id="ctx"):
            fields = ctx_fields(make_record(extra={"trace_id": "explicit"}))
        assert fields == {"trace_id": "explicit", "trace_id_2": "ctx"}

    def test_context_keys_are_sanitised(self) -> None:
        """Context keys follow the same key rules as extras."""
        with bind(**{"x-request-id": "r", "__topic__": "t"}):
            assert ctx_fields() == {"x_request_id": "r", "_topic_": "t"}

    def test_context_can_be_disabled(self) -> None:
        """context=False ignores the bound fields."""
        with bind(trace_id="t"):
            assert ctx_fields(mapper=RecordMapper(fields=[], context=False)) == {}

    def test_registered_context_vars(self) -> None:
        """context_vars adds user ContextVars; unset (None) ones are omitted."""
        tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant", default=None)
        mapper = RecordMapper(fields=[], context_vars={"tenant-id": tenant})
        assert ctx_fields(mapper=mapper) == {}
        token = tenant.set("acme")
        try:
            assert ctx_fields(mapper=mapper) == {"tenant_id": "acme"}
        finally:
            tenant.reset(token)

    def test_context_var_without_default_is_omitted(self) -> None:
        """A ContextVar with no value and no default does not break mapping."""
        var: contextvars.ContextVar[str] = contextvars.ContextVar("nodefault")
        assert ctx_fields(mapper=RecordMapper(fields=[], context_vars={"v": var})) == {}


class TestThreads:
    def test_plain_thread_starts_with_empty_context(self) -> None:
        """A new Thread does not inherit the bound fields (this is why propagate exists)."""
        seen: list[dict[str, str]] = []
        with bind(trace_id="t"):
            thread = threading.Thread(target=lambda: seen.append(ctx_fields()))
            thread.start()
            thread.join()
        assert seen == [{}]

    def test_propagate_carries_context_into_a_thread(self) -> None:
        """propagate(fn) runs fn in a copy of the caller's context."""
        seen: list[dict[str, str]] = []
        with bind(trace_id="t-thread"):
            thread = threading.Thread(target=propagate(lambda: seen.append(ctx_fields())))
        thread.start()
        thread.join()
        assert seen == [{"trace_id": "t-thread"}]

    def test_copy_context_in_executor_isolated_per_task(self) -> None:
        """Each submitted copy_context().run sees its own binding, concurrently."""
        barrier = threading.Barrier(4)

        def work(n: int) -> dict[str, str]:
            with bind(trace_id=f"t{n}"):
                barrier.wait(timeout=10)  # all four are bound at the same time
                return ctx_fields()

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(contextvars.copy_context().run, work, n) for n in range(4)]
            results = [f.result(timeout=10) for f in futures]
        assert results == [{"trace_id": f"t{n}"} for n in range(4)]

    def test_context_filter_survives_a_queue_listener(self) -> None:
        """ContextFilter pins the emitting thread's context onto the record for a listener."""
        q: queue.Queue[logging.LogRecord] = queue.Queue()
        mapped: list[dict[str, str]] = []
        done = threading.Event()

        class MappingHandler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                mapped.append(ctx_fields(record))
                done.set()

        handler = logging.handlers.QueueHandler(q)
        handler.addFilter(ContextFilter())
        listener = logging.handlers.QueueListener(q, MappingHandler())
        logger = logging.getLogger("tests.mapping.queue")
        logger.propagate = False
        logger.addHandler(handler)
        listener.start()
        try:
            with bind(trace_id="from-app"):
                logger.warning("queued")
            assert done.wait(timeout=10)
        finally:
            listener.stop()
            logger.removeHandler(handler)
            logger.propagate = True
        assert mapped == [{"trace_id": "from-app"}]

    def test_context_filter_keeps_an_existing_context(self) -> None:
        """A record that already carries sls_context keeps it."""
        record = make_record(extra={"sls_context": {"trace_id": "first"}})
        with bind(trace_id="second"):
            assert ContextFilter().filter(record) is True
        assert record.sls_context == {"trace_id": "first"}


class TestAsyncio:
    def test_concurrent_tasks_keep_their_own_context(self) -> None:
        """Interleaved tasks each map their own trace id."""

        async def handle(n: int, gate: asyncio.Event, out: dict[int, Any]) -> None:
            with bind(trace_id=f"req-{n}"):
                await gate.wait()  # every task is bound before any maps
                out[n] = ctx_fields()
                await asyncio.sleep(0)
                out[-n - 1] = ctx_fields()

        async def main() -> dict[int, Any]:
            gate = asyncio.Event()
            out: dict[int, Any] = {}
            tasks = [asyncio.create_task(handle(n, gate, out)) for n in range(5)]
            await asyncio.sleep(0)
            gate.set()
            await asyncio.gather(*tasks)
            assert RequestContext.get() == {}
            return out

        out = asyncio.run(main())
        for n in range(5):
            assert out[n] == out[-n - 1] == {"trace_id": f"req-{n}"}

    def test_child_task_inherits_and_to_thread_propagates(self) -> None:
        """A task created inside bind() inherits it; asyncio.to_thread copies it too."""

        async def main() -> tuple[dict[str, str], dict[str, str]]:
            with bind(trace_id="parent"):
                child = asyncio.create_task(asyncio.to_thread(ctx_fields))
                in_task = await asyncio.create_task(_async_fields())
            return in_task, await child

        in_task, in_thread = asyncio.run(main())
        assert in_task == in_thread == {"trace_id": "parent"}


async def _async_fields() -> dict[str, str]:
    return ctx_fields()
