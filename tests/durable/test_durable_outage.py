"""Outages: 503s, hung requests, a server that is down. The application never waits, and once
the link is back every record arrives exactly once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    client,
    emit_range,
    make_handler,
    spool_totals,
    wait_until,
)

from yai_spool.emulator import Emulator


@pytest.mark.parametrize(
    "fault",
    ["fail_next", "fail_fraction", "close_mid_request", "throttled"],
)
def test_failing_requests_lose_nothing(emu: Emulator, spool_path: Path, fault: str) -> None:
    if fault == "fail_next":
        emu.faults.fail_next(8, error_code="ServerBusy")  # 503
    elif fault == "fail_fraction":
        emu.faults.fail_fraction(0.5, error_code="InternalServerError", seed=7)
    elif fault == "close_mid_request":
        emu.faults.close_mid_request(5)
    else:
        emu.faults.fail_next(5, error_code="WriteQuotaExceed")
    handler = make_handler(emu, spool_path, batch_size=50)
    emit_range(handler, 0, 1000, "durable.outage.fail")

    assert emu.wait_for_count(PROJECT, LOGSTORE, 1000, timeout=30)
    handler.close()
    assert_exactly_once(emu, range(1000))
    failed = [r for r in emu.requests(PROJECT, LOGSTORE) if r.outcome != "accepted"]
    assert failed, "the fault never fired: the test proved nothing"
    assert spool_totals(spool_path) == (0, 0, 0)


def test_emit_never_waits_on_a_hung_request(emu: Emulator, spool_path: Path) -> None:
    emu.faults.hang(n=1)
    # Client timeouts far above the test: the request stays held until we release it.
    handler = make_handler(
        emu, spool_path, sender_factory=lambda: client(emu, connect=5, read=60, write=60, total=60)
    )
    emit_range(handler, 0, 10, "durable.outage.hang")
    assert emu.faults.wait_held(1, timeout=30), "the first batch never reached the server"

    # While the flusher thread is stuck inside PutLogs, the application logs on.
    done = threading.Event()

    def app() -> None:
        emit_range(handler, 10, 2010, "durable.outage.hang")
        done.set()

    thread = threading.Thread(target=app)
    thread.start()
    assert done.wait(30), "emit blocked behind the hung request"
    thread.join()
    assert emu.faults.held == 1  # still held: the 2000 emits never needed the network
    ready, leased, _ = spool_totals(spool_path)
    assert ready + leased == 2010  # every one of them is on disk already
    assert 1 <= leased <= 10  # the held batch (its size depends on the linger)

    emu.faults.clear()  # the server answers the held request; the backlog drains
    assert emu.wait_for_count(PROJECT, LOGSTORE, 2010, timeout=30)
    handler.close()
    assert_exactly_once(emu, range(2010))


def test_hung_requests_time_out_and_are_retried(emu: Emulator, spool_path: Path) -> None:
    emu.faults.hang(n=2)
    handler = make_handler(
        emu,
        spool_path,
        sender_factory=lambda: client(emu, connect=1, read=0.3, write=1, pool=1, total=0.5),
    )
    emit_range(handler, 0, 300, "durable.outage.timeout")
    assert emu.wait_for_count(PROJECT, LOGSTORE, 300, timeout=30)
    handler.close()
    assert_exactly_once(emu, range(300))
    # Both hung requests were given up by the client (the emulator notices within its poll).
    assert wait_until(
        lambda: [r.outcome for r in emu.requests(PROJECT, LOGSTORE)].count("abandoned") == 2
    )


def test_server_down_then_up(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path)
    emit_range(handler, 0, 100, "durable.outage.down")
    # Acked, not only stored: a server going down between its store and its 200 would make
    # the flusher resend that batch (at least once), which is not what this test is about.
    assert wait_until(lambda: spool_totals(spool_path) == (0, 0, 0))

    emu.down()
    emit_range(handler, 100, 1100, "durable.outage.down")
    # The flusher is failing (connection refused) and the records wait on disk.
    assert wait_until(lambda: (handler.stats()["flusher"] or {}).get("consecutive_failures", 0) > 0)
    ready, leased, _ = spool_totals(spool_path)
    assert ready + leased == 1000
    assert emu.count(PROJECT, LOGSTORE) == 100

    emu.up()
    emit_range(handler, 1100, 1200, "durable.outage.down")
    assert emu.wait_for_count(PROJECT, LOGSTORE, 1200, timeout=30)
    handler.close()
    assert_exactly_once(emu, range(1200))
    assert spool_totals(spool_path) == (0, 0, 0)


def test_a_sender_that_cannot_be_built_never_raises_into_the_app(
    emu: Emulator, spool_path: Path
) -> None:
    """A broken endpoint configuration: reported once, records kept for a later flusher."""

    def broken() -> object:
        raise ValueError("no such endpoint")

    handler = make_handler(emu, spool_path, sender_factory=broken)
    reported: list[object] = []
    handler.handleError = reported.append  # type: ignore[method-assign]
    emit_range(handler, 0, 100, "durable.outage.badsender")  # must not raise
    handler.close()
    assert len(reported) == 1  # said once, not once per record
    assert spool_totals(spool_path) == (100, 0, 0)

    fixed = make_handler(emu, spool_path)
    assert fixed.flush_until(30)
    fixed.close()
    assert_exactly_once(emu, range(100))
