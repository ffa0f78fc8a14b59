"""Many processes, one spool: concurrent writers, and a fork after the handler exists."""

from __future__ import annotations

import json
import os
import selectors
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
FORKS = 15


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


def run_forked(child: Callable[[], dict[str, Any]], timeout: float = 30.0) -> dict[str, Any]:
    """Fork; the child runs ``child`` and reports its JSON result, then ``os._exit``.

    The parent waits for the report with a deadline: a child deadlocked at fork (a lock some
    other thread held at that instant) fails the test instead of hanging it, and is killed.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(child()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read_end, selectors.EVENT_READ)
            if not sel.select(timeout):
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"forked child {pid} is stuck (deadlocked at fork?)")
        with os.fdopen(read_end, "rb") as pipe:
            report = json.loads(pipe.read() or b"{}")
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return report  # type: ignore[no-any-return]


def test_fork_after_the_handler_exists(emu: Emulator, spool_path: Path) -> None:
    # One request at a time, so "one flusher" is also "one connection" at the emulator.
    handler = make_handler(emu, spool_path, poll_interval=0.02, max_in_flight=1)
    logger = make_logger("durable.fork", handler)
    for seq in range(100):
        logger.info("parent %d", seq, extra={"seq": seq})
    assert handler.flush_until(30)
    assert handler.stats()["flusher"]["is_flusher"]  # the parent ships this spool

    def child() -> dict[str, Any]:  # log, try to flush, report; leave without cleanup
        for seq in range(1000, 1500):
            logger.info("child %d", seq, extra={"seq": seq})
        report = {
            "flushed": handler.flush_until(5),
            "is_flusher": handler.spool.is_flusher,
            "flusher_pid": handler.spool.flusher_pid(),
        }
        handler.close()
        return report

    try:
        report = run_forked(child)
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


@pytest.mark.slow
def test_fork_while_the_parent_logs_and_ships(emu: Emulator, spool_path: Path) -> None:
    """Forks land while parent threads are inside SQLite: no child may deadlock.

    The parent keeps logging from a thread and its flusher keeps leasing and releasing
    (the server is down, so every attempt fails fast and retries), i.e. the parent's own
    threads are in SQLite most of the time. The emulator is down meanwhile so that its own
    SQLite (it shares this test process) stays idle: only our threads are measured.
    """
    handler = make_handler(emu, spool_path, poll_interval=0.01)
    logger = make_logger("durable.forkstress", handler)
    logger.info("first", extra={"seq": 0})
    assert handler.flush_until(30)
    emu.down()

    stop = threading.Event()
    parent_seqs = [0]

    def busy() -> None:
        seq = 1
        while not stop.is_set():
            logger.info("parent %d", seq, extra={"seq": seq})
            parent_seqs.append(seq)
            seq += 1

    thread = threading.Thread(target=busy)
    thread.start()
    children: list[int] = []
    try:
        for i in range(FORKS):
            base = STRIDE * (i + 1)

            def child(base: int = base) -> dict[str, Any]:
                for seq in range(base, base + 20):
                    logger.info("child %d", seq, extra={"seq": seq})
                handler.close()
                return {"ok": True}

            assert run_forked(child, timeout=20) == {"ok": True}
            children.extend(range(base, base + 20))
    finally:
        stop.set()
        thread.join()
    assert handler.stats()["flusher"]["consecutive_failures"] > 0  # it was busy failing

    emu.up()
    total = len(parent_seqs) + len(children)
    assert emu.wait_for_count(PROJECT, LOGSTORE, total, timeout=60)
    handler.close()
    assert_exactly_once(emu, [*parent_seqs, *children])
