"""examples/fastapi_otel.py under uvicorn: OTel's ASGI instrumentation opens the spans, and the
records of each request reach the emulator carrying that request's span ids."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modes_support import (
    DEADLINE,
    INCOMING_PARENT,
    INCOMING_TRACE,
    call_example,
    serve_example,
    stop_example,
)

from yai_spool.testing import ABSENT, SLSEmulator

pytest.importorskip("opentelemetry.instrumentation.asgi")


@pytest.fixture
def served(
    sls_emulator: SLSEmulator, tmp_path: Path
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    env = {
        **sls_emulator.env(),
        "SLS_PROJECT": sls_emulator.project,
        "SLS_LOGSTORE": sls_emulator.logstore,
        "YAI_SPOOL_QUEUE": "spool",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    with serve_example("fastapi_otel:app", env) as served:
        yield served


def test_request_records_carry_the_server_spans_ids(
    sls_emulator: SLSEmulator, served: tuple[httpx.Client, subprocess.Popen[bytes]]
) -> None:
    client, proc = served
    order, report, checkout = call_example(client)
    # The server span continues the incoming trace; the middleware echoes the span's trace id.
    assert order.headers["x-request-id"] == INCOMING_TRACE
    assert order.json() == {"order_id": "o-7", "trace_id": INCOMING_TRACE}
    report_trace = report.headers["x-request-id"]
    # A span is active: the request id header does not override the span's trace id.
    assert re.fullmatch(r"[0-9a-f]{32}", report_trace)
    assert report.json() == {"trace_id": report_trace}
    checkout_trace = checkout.headers["x-request-id"]
    assert len({INCOMING_TRACE, report_trace, checkout_trace}) == 3

    [looked_up] = sls_emulator.wait_for(1, message="order o-7 looked up", timeout=DEADLINE)
    [audit] = sls_emulator.wait_for(1, message="audit: order o-7 was read", timeout=DEADLINE)
    [built] = sls_emulator.wait_for(1, message="report built", timeout=DEADLINE)
    [receipt] = sls_emulator.wait_for(1, message="receipt sent to ana", timeout=DEADLINE)
    assert looked_up["trace_id"] == audit["trace_id"] == INCOMING_TRACE
    assert re.fullmatch(r"[0-9a-f]{16}", looked_up["span_id"])
    assert looked_up["span_id"] != INCOMING_PARENT  # the server span's own id, a child
    assert audit["span_id"] == looked_up["span_id"]  # a task of the request: same span
    assert int(looked_up["trace_flags"], 16) & 0x01  # sampled, as the incoming parent said
    assert built["trace_id"] == report_trace  # a def endpoint on a worker thread
    assert receipt["trace_id"] == checkout_trace  # a background task after the response
    [starting] = sls_emulator.wait_for(1, message="service starting", timeout=DEADLINE)
    assert starting.matches(trace_id=ABSENT, span_id=ABSENT, trace_flags=ABSENT)

    stop_example(proc)
    sls_emulator.wait_for(1, message="service stopping", trace_id=ABSENT, timeout=DEADLINE)
