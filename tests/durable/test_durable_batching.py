"""Under a steady stream of records the flusher sends full batches, not a request per handful.

A full batch waiting (or ``flush()``) makes the flusher skip its linger once; it must not stay
in that hurry afterwards, or every window ships only the records that arrived during the
previous request. Real handler, real emulator; the assertion counts requests, not time.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from durable_support import LOGSTORE, PROJECT, assert_exactly_once, make_handler, make_logger

from yai_spool.emulator import Emulator

RECORDS = 1000
BATCH = 100
LINGER = 0.5


def test_a_steady_stream_ships_in_full_batches(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, batch_size=BATCH, linger=LINGER)
    log = make_logger("batching", handler)
    pace = threading.Event()  # never set: only paces the stream
    started = time.monotonic()
    for seq in range(RECORDS):
        log.info("steady", extra={"seq": seq})
        pace.wait(0.001)  # a steady stream: the spool is never empty between two requests
    streamed = time.monotonic() - started
    assert handler.flush_until(30)
    handler.close()
    assert_exactly_once(emu, range(RECORDS))
    requests = [r for r in emu.requests(PROJECT, LOGSTORE) if r.outcome == "accepted"]
    # A window starts when a full batch waits or a linger period ends, and ships what is
    # ready: full batches and at most one partial one (the remainder). Staying hurried
    # would start a window after every request instead, each with the few records that
    # arrived meanwhile: hundreds of requests.
    windows = RECORDS // BATCH + int(streamed / LINGER) + 2
    bound = 2 * windows
    assert len(requests) <= bound, (len(requests), bound, [r.raw_size for r in requests][:20])
