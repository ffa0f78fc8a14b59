"""Span ids reach SLS: real OTel SDK spans, real handlers, the emulator (``sls_emulator``).

Threads and asyncio tasks each log inside their own spans at the same time; every record
must carry the ids of the span that was current where it was logged, never a neighbour's.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import logging.handlers
import queue
import threading

from opentelemetry.trace import Tracer
from otel_support import ids_of, otel_fields

from yai_spool.handlers.context import ContextFilter, bind
from yai_spool.testing import ABSENT, SLSEmulator, attached

THREADS = 6
PER_THREAD = 20


def test_concurrent_threads_each_ship_their_own_span(
    sls_emulator: SLSEmulator, sls_handler: logging.Handler, tracer: Tracer
) -> None:
    """Six threads, a span each, interleaved records: ids follow the thread's span."""
    expected: dict[str, dict[str, str]] = {}
    start = threading.Barrier(THREADS)

    def work(n: int) -> None:
        with tracer.start_as_current_span(f"job-{n}") as span:
            expected[f"t{n}"] = ids_of(span)
            start.wait(timeout=30)  # all spans open at once: records interleave
            for i in range(PER_THREAD):
                log.info("step %d", i, extra={"worker": f"t{n}"})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    with attached("otel.threads", sls_handler) as log:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    records = sls_emulator.wait_for(THREADS * PER_THREAD, timeout=30)
    assert len({ids["trace_id"] for ids in expected.values()}) == THREADS
    for rec in records:
        assert otel_fields(rec) == expected[rec["worker"]], rec


def test_a_thread_with_a_copied_context_logs_in_the_callers_span(
    sls_emulator: SLSEmulator, sls_handler: logging.Handler, tracer: Tracer
) -> None:
    """``copy_context().run``: the caller's span; a bare thread: no span, no fields."""
    with attached("otel.copy", sls_handler) as log, tracer.start_as_current_span("request") as span:
        ctx = contextvars.copy_context()
        copied = threading.Thread(target=ctx.run, args=(log.warning, "copied"))
        bare = threading.Thread(target=log.warning, args=("bare",))
        for t in (copied, bare):
            t.start()
            t.join(timeout=30)
    [copied_rec] = sls_emulator.wait_for(1, message="copied")
    [bare_rec] = sls_emulator.wait_for(1, message="bare", trace_id=ABSENT, span_id=ABSENT)
    assert otel_fields(copied_rec) == ids_of(span)
    assert otel_fields(bare_rec) == {}


def test_asyncio_tasks_each_ship_their_own_span(
    sls_emulator: SLSEmulator, sls_handler: logging.Handler, tracer: Tracer
) -> None:
    """Concurrent tasks under one event loop; child tasks inherit their parent's span."""
    expected: dict[str, dict[str, str]] = {}

    async def child(name: str) -> None:
        await asyncio.sleep(0)
        log.info("child of %s", name, extra={"task": name})

    async def request(name: str) -> None:
        with tracer.start_as_current_span(name) as span:
            expected[name] = ids_of(span)
            for i in range(5):
                log.info("%s step %d", name, i, extra={"task": name})
                await asyncio.sleep(0)  # let the other tasks interleave
            await asyncio.create_task(child(name))  # inherits the context, so the span

    async def main() -> None:
        await asyncio.gather(*(request(f"r{n}") for n in range(8)))

    with attached("otel.tasks", sls_handler) as log, bind(trace_id="outside-any-span"):
        asyncio.run(main())
        log.info("after the requests", extra={"task": "none"})
    records = sls_emulator.wait_for(8 * 6 + 1, timeout=30)
    for rec in records:
        if rec["task"] == "none":
            assert rec["trace_id"] == "outside-any-span"  # no span: the bound id fills in
            assert "span_id" not in rec
        else:
            assert otel_fields(rec) == expected[rec["task"]], rec
    assert len(sls_emulator.records(message="child of r3")) == 1


def test_queue_handler_with_context_filter_keeps_the_emitting_span(
    sls_emulator: SLSEmulator, sls_handler: logging.Handler, tracer: Tracer
) -> None:
    """QueueHandler -> QueueListener thread -> SpoolHandler: ContextFilter carries the ids."""
    q: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    front = logging.handlers.QueueHandler(q)
    front.addFilter(ContextFilter())
    listener = logging.handlers.QueueListener(q, sls_handler)
    listener.start()
    try:
        with attached("otel.queue", front) as log, tracer.start_as_current_span("emitter") as span:
            log.warning("through a queue")
    finally:
        listener.stop()
    [rec] = sls_emulator.wait_for(1, message="through a queue")
    assert otel_fields(rec) == ids_of(span)
