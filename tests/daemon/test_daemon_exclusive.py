"""Never two drainers of one spool: two daemons on one directory, and a daemon next to an
application's in-process flusher. Every record is delivered exactly once and each spool's
flusher lock names one holder."""

from __future__ import annotations

import logging
import signal
import uuid

from daemon_support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    Rig,
    delivered_messages,
    spool_records,
    spool_stats,
)

from yai_spool.handlers.durable import SpoolHandler


def test_daemon_two_daemons_on_one_directory_never_drain_one_spool_at_once(rig: Rig) -> None:
    names = [f"s{i}" for i in range(3)]
    per_spool = 200
    for name in names:  # a backlog both daemons see at start
        spool_records(rig.spool_dir / f"{name}.spool", [f"{name}-{i}" for i in range(100)])
    config = rig.config(top={"poll_interval": 0.2})
    first, second = rig.run(config), rig.run(config)
    ready = rig.notify.wait_for(lambda m: "READY" in m)
    assert ready is not None, first.stderr + second.stderr
    assert rig.notify.wait_for(lambda m: "READY" in m and m is not ready) is not None
    for name in names:  # and records written while both run
        spool_records(
            rig.spool_dir / f"{name}.spool", [f"{name}-{i}" for i in range(100, per_spool)]
        )
    total = per_spool * len(names)
    assert rig.emu.wait_for_count("proj", "store", total, timeout=30), first.stderr
    holders = {name: spool_stats(rig.spool_dir / f"{name}.spool").flusher_pid for name in names}
    assert set(holders.values()) <= {first.pid, second.pid}, holders

    # Fail over: the holder of s0 stops; the other daemon takes s0 over.
    leaving = first if holders["s0"] == first.pid else second
    staying = second if leaving is first else first
    leaving.signal(signal.SIGTERM)
    assert leaving.wait(30) == 0
    spool_records(rig.spool_dir / "s0.spool", [f"s0-{i}" for i in range(per_spool, 250)])
    assert rig.emu.wait_for_count("proj", "store", total + 50, timeout=30), staying.stderr
    assert spool_stats(rig.spool_dir / "s0.spool").flusher_pid == staying.pid

    staying.signal(signal.SIGTERM)
    assert staying.wait(30) == 0
    delivered = delivered_messages(rig.emu)
    assert len(delivered) == total + 50
    assert set(delivered.values()) == {1}, "a record was delivered twice"
    assert rig.emu.count("proj", "store") == total + 50


def test_daemon_and_in_process_flusher_share_one_spool(rig: Rig) -> None:
    spool = rig.spool_dir / "app.spool"
    handler = SpoolHandler(
        project="proj",
        logstore="store",
        endpoint=rig.emu.url,
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        spool_path=spool,
        linger=0.05,
    )
    logger = logging.getLogger(f"daemon-test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("before-daemon")  # starts the in-process flusher, which takes the lock
        assert rig.emu.wait_for_count("proj", "store", 1, timeout=15)
        daemon = rig.run(rig.config(top={"poll_interval": 0.2}))
        assert rig.notify.wait_key("READY") is not None, daemon.stderr
        for i in range(300):
            logger.info("shared-%d", i)
        assert rig.emu.wait_for_count("proj", "store", 301, timeout=30), daemon.stderr
        holder = spool_stats(spool).flusher_pid
        assert holder is not None
        assert holder != daemon.pid  # the application kept its lock; the daemon stood by
    finally:
        logger.removeHandler(handler)
        handler.close()  # releases the lock: the daemon may take over now
    producer_handler = SpoolHandler(
        project="proj", logstore="store", spool_path=spool, flusher="none"
    )
    producer = logging.getLogger(f"daemon-test.{uuid.uuid4().hex}")
    producer.propagate = False
    producer.setLevel(logging.INFO)
    producer.addHandler(producer_handler)
    try:
        for i in range(20):
            producer.info("after-%d", i)
    finally:
        producer.removeHandler(producer_handler)
        producer_handler.close()
    assert rig.emu.wait_for_count("proj", "store", 321, timeout=30), daemon.stderr
    assert spool_stats(spool).flusher_pid == daemon.pid
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    delivered = delivered_messages(rig.emu)
    assert len(delivered) == 321
    assert set(delivered.values()) == {1}, "a record was delivered twice"
