"""examples/fastapi_app.py served by uvicorn (a subprocess) on 127.0.0.1: real HTTP requests
whose records reach the emulator carrying their trace ids, live and at shutdown."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modes_support import (
    AK_ID,
    AK_SECRET,
    DEADLINE,
    INCOMING_TRACE,
    LOGSTORE,
    PROJECT,
    call_example,
    serve_example,
    stop_example,
    stored,
)

from yai_spool.emulator import Emulator


@pytest.fixture
def served(
    emu: Emulator, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": AK_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": AK_SECRET,
        "YAI_SPOOL_ENDPOINT": emu.url,
        "SLS_PROJECT": PROJECT,
        "SLS_LOGSTORE": LOGSTORE,
        "YAI_SPOOL_QUEUE": request.param,
        "XDG_STATE_HOME": str(tmp_path / "state"),  # where the durable spool lives
    }
    with serve_example("fastapi_app:app", env) as served:
        yield served


def texts(emu: Emulator) -> dict[str, str | None]:
    """message -> trace_id of every stored log."""
    return {log.text("message") or "": log.text("trace_id") for log in stored(emu)}


@pytest.mark.parametrize("served", ["memory", "spool"], indirect=True)
def test_requests_ship_with_their_trace_ids(
    emu: Emulator, served: tuple[httpx.Client, subprocess.Popen[bytes]]
) -> None:
    client, proc = served
    order, report, checkout = call_example(client)
    trace = INCOMING_TRACE
    assert order.json() == {"order_id": "o-7", "trace_id": trace}
    assert order.headers["x-request-id"] == trace
    assert report.json() == {"trace_id": "req-report-1"}
    generated = checkout.headers["x-request-id"]
    assert checkout.json() == {"trace_id": generated}
    assert len(generated) == 32

    # Shipped while the service runs (the asyncio flusher), not only at shutdown.
    assert emu.wait_for_count(PROJECT, LOGSTORE, 6, timeout=DEADLINE), texts(emu)
    shipped = texts(emu)
    assert shipped["service starting"] is None  # no request: no trace id
    assert shipped["order o-7 looked up"] == trace
    assert shipped["audit: order o-7 was read"] == trace  # a task of the request
    assert shipped["report built"] == "req-report-1"  # a def endpoint (worker thread)
    assert shipped["checkout by ana"] == generated
    assert shipped["receipt sent to ana"] == generated  # a background task

    stop_example(proc)  # graceful shutdown: the lifespan drains the queue
    assert emu.wait_for_count(PROJECT, LOGSTORE, 7, timeout=DEADLINE), texts(emu)
    assert "service stopping" in texts(emu)
    logs = stored(emu)
    assert {log.topic for log in logs} == {"fastapi-example"}
    assert len(logs) == 7  # nothing duplicated
