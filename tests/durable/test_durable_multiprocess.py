"""Many processes, one spool: concurrent writers, and a fork after the handler exists."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from durable_support import (
    LOGSTORE,
    PROJECT,
    assert_exactly_once,
    make_handler,
    make_logger,
    read_line,
    reap,
    spawn_child,
    spool_totals,
    start_flusher,
    wait_until,
)

from yai_spool.emulator import Emulator
from yai_spool.spool import Spool

CHILDREN = 3
PER_CHILD = 3000
STRIDE = 1_000_000


@pytest.mark.slow
def test_concurrent_writers_each_record_exactly_once(emu: Emulator, spool_path: Path) -> None:
    with Spool(spool_path) as spool:
        flusher = start_flusher(spool, emu, batch=200)  # ships while the children write
        children = [
            spawn_child("write", spool_path, i * STRIDE, PER_CHILD) for i in range(CHILDREN)
        ]
        try:
            for child in children:
                assert read_line(child) == "ready"
            for child in children:
                assert read_line(child, timeout=60) == "done"
                assert child.wait(timeout=30) == 0
            total = CHILDREN * PER_CHILD
            assert emu.wait_for_count(PROJECT, LOGSTORE, total, timeout=60)
            assert wait_until(lambda: spool_totals(spool_path) == (0, 0, 0))
        finally:
            flusher.stop(5)
            for child in children:
                reap(child)
    expected = [i * STRIDE + n for i in range(CHILDREN) for n in range(PER_CHILD)]
    assert_exactly_once(emu, expected)


def test_fork_after_the_handler_exists(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, poll_interval=0.02)
    logger = make_logger("durable.fork", handler)
    for seq in range(100):
        logger.info("parent %d", seq, extra={"seq": seq})
    assert emu.wait_for_count(PROJECT, LOGSTORE, 100, timeout=30)
    assert handler.stats()["flusher"]["is_flusher"]  # the parent ships this spool

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: log, try to flush, report, and leave without cleanup
        status = 1
        try:
            os.close(read_end)
            for seq in range(1000, 1500):
                logger.info("child %d", seq, extra={"seq": seq})
            flushed = handler.flush_until(5)
            report = {
                "flushed": flushed,
                "is_flusher": handler.spool.is_flusher,
                "flusher_pid": handler.spool.flusher_pid(),
            }
            handler.close()
            os.write(write_end, json.dumps(report).encode())
            status = 0
        finally:
            os._exit(status)

    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            report = json.loads(pipe.read() or b"{}")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The child never shipped: its flusher found the parent holding the lock.
        assert report == {"flushed": False, "is_flusher": False, "flusher_pid": os.getpid()}

        for seq in range(100, 200):
            logger.info("parent %d", seq, extra={"seq": seq})
        # The parent's flusher picks up the child's records (polling) and its own.
        assert emu.wait_for_count(PROJECT, LOGSTORE, 700, timeout=30)
        assert handler.flush_until(10)
    finally:
        handler.close()
    assert_exactly_once(emu, [*range(200), *range(1000, 1500)])
    # One flusher at a time: every accepted request came over the parent's one connection.
    peers = {r.peer for r in emu.requests(PROJECT, LOGSTORE) if r.outcome == "accepted"}
    assert len(peers) == 1
