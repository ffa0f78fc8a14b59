"""Child process of the durable tests (run as ``python durable_child.py MODE ...``).

Modes:

- ``produce SPOOL START COUNT``: a ``SpoolHandler(flusher="none")`` logs records numbered
  START..START+COUNT-1 (extra ``seq``) and writes each number to stdout *after* ``emit``
  returned, so every number the parent reads is a record the handler claims is durable.
  Prints ``ready`` first and ``done`` at the end. The parent may SIGKILL it at any moment.
- ``write SPOOL START COUNT``: the same without per-record output (concurrent writers).
- ``flusher SPOOL URL BATCH``: a ``ThreadFlusher`` over a real ``PutLogsClient`` that ships
  the spool until killed; prints ``flusher`` once it holds the flusher lock.
- ``hold SPOOL COUNT``: a ``SpoolHandler(flusher="none")`` logs COUNT records, prints
  ``appended`` and waits to be killed (its WAL stays as the crash leaves it). A read
  transaction opened before the first record keeps the housekeeper from copying any of them
  into the database file first: every record lives only in the WAL when the kill comes.
- ``stages SPOOL A B``: logs A records, prints ``stage``, and after a line on stdin logs B
  more and prints ``stage`` again; then waits to be killed.
- ``pin SPOOL [exclusive]``: opens a plain SQLite read transaction on the spool (a snapshot
  that holds back checkpoints), or with ``exclusive`` the write lock (every writer waits,
  then fails as busy), prints ``pinned`` and waits to be killed.
- ``fill SPOOL``: a ``SpoolHandler(flusher="none")`` logs ~450-byte records until at least
  100 were dropped (the disk is full), prints ``{"emitted": N}``; after a line on stdin
  logs 20 more and prints the new total; after another line closes the handler, prints
  ``closed`` and waits to be killed.
- ``failing-flusher SPOOL URL``: a ``SpoolHandler`` with its flusher thread logs 200 records,
  prints ``logged``; after a line on stdin waits (30 s at most) until its flusher failed on
  the spool, prints ``{"failures": N}``, and after another line exits through
  ``logging.shutdown()``. Logging is left unconfigured: what reaches stderr is what an
  application that never configured ``yai_spool.internal`` would see.
- ``shutdown SPOOL URL CLOSE_TIMEOUT COUNT``: a ``SpoolHandler`` on the root logger logs COUNT
  records, waits until a batch is leased (a request is in flight), then times
  ``logging.shutdown()`` and prints one JSON line: the seconds it took and the names of the
  threads still alive after it. stderr is left to the parent (it must stay free of tracebacks).

Constants shared with the tests live here so the child imports only what it runs.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from yai_spool.handlers.durable import SpoolHandler

PROJECT = "durable-proj"
LOGSTORE = "durable-store"
AK_ID = "LTAI5tDurableKey"
AK_SECRET = "durable-secret-do-not-leak"


def _say(text: str) -> None:
    os.write(1, f"{text}\n".encode())  # unbuffered: the parent sees it before we die


def _handler(spool: str, url: str | None = None, **options: Any) -> SpoolHandler:
    """A ``SpoolHandler`` on ``spool``: shipping to ``url`` (linger 10 ms), else no flusher."""
    from yai_spool.handlers.durable import SpoolHandler

    if url is None:
        options["flusher"] = "none"
    else:
        options.update(endpoint=url, access_key_id=AK_ID, access_key_secret=AK_SECRET)
        options.setdefault("linger", 0.01)
    return SpoolHandler(project=PROJECT, logstore=LOGSTORE, spool_path=spool, **options)


def _logger(handler: logging.Handler) -> logging.Logger:
    """The child's logger: INFO and up, to ``handler`` only."""
    logger = logging.getLogger("durable.child")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def produce(spool: str, start: int, count: int, *, report: bool) -> None:
    handler = _handler(spool)
    logger = _logger(handler)
    _say("ready")
    for seq in range(start, start + count):
        logger.info("record %d from pid %d", seq, os.getpid(), extra={"seq": seq})
        if report:
            _say(str(seq))
    handler.close()
    _say("done")


def flusher(spool_path: str, url: str, batch: int) -> None:
    from yai_spool.shipping.flusher import FlusherConfig, ThreadFlusher
    from yai_spool.shipping.retry import RetryPolicy
    from yai_spool.sls.client import PutLogsClient
    from yai_spool.spool import Spool

    spool = Spool(spool_path)
    sender = PutLogsClient(url, access_key_id=AK_ID, access_key_secret=AK_SECRET)
    config = FlusherConfig(
        max_batch_records=batch,
        linger=0.0,
        poll_interval=0.02,
        retry=RetryPolicy(base=0.01, cap=0.05, max_age=None),
    )
    thread = ThreadFlusher(spool, sender, config)
    thread.start()
    deadline = time.monotonic() + 30
    while not thread.stats.is_flusher:  # poll with a deadline; the parent waits on our line
        if time.monotonic() > deadline:
            _say("no-lock")
            return
        time.sleep(0.005)
    _say("flusher")
    threading.Event().wait(60)  # until the parent kills us (bounded if it never does)


def hold(spool: str, count: int) -> None:
    import sqlite3

    handler = _handler(spool)
    handler.spool.checkpoint("TRUNCATE")  # the schema in the database file, the WAL empty
    # A checkpoint copies WAL frames into the database only up to the oldest reader's
    # snapshot: this one predates every record, so none is copied before the kill (else a
    # damaged frame would contradict pages already in the database: "malformed", not a loss).
    reader = sqlite3.connect(spool, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM ack_queue_spool").fetchone()
    logger = _logger(handler)
    for seq in range(count):
        logger.info("record %d from pid %d", seq, os.getpid(), extra={"seq": seq})
    _say("appended")
    threading.Event().wait(60)  # until the parent kills us (bounded if it never does)


def stages(spool: str, first: int, second: int) -> None:
    handler = _handler(spool)
    logger = _logger(handler)
    for seq in range(first):
        logger.info("record %d", seq, extra={"seq": seq})
    _say("stage")
    sys.stdin.readline()
    for seq in range(first, first + second):
        logger.info("record %d", seq, extra={"seq": seq})
    _say("stage")
    threading.Event().wait(60)


def pin(spool: str, how: str = "") -> None:
    import sqlite3

    conn = sqlite3.connect(spool, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE" if how == "exclusive" else "BEGIN")
    conn.execute("SELECT count(*) FROM ack_queue_spool").fetchone()
    _say("pinned")
    threading.Event().wait(60)


def fill(spool: str) -> None:
    import json

    handler = _handler(spool)
    logger = _logger(handler)
    pad = "x" * 300  # with the mapped fields: ~450 bytes per stored record
    emitted = 0

    def log(n: int) -> None:
        nonlocal emitted
        for _ in range(n):
            logger.info("record %d %s", emitted, pad, extra={"seq": emitted})
            emitted += 1

    while handler.stats()["spool"].dropped_total < 100 and emitted < 1_000_000:
        log(10)
    _say(json.dumps({"emitted": emitted}))
    sys.stdin.readline()
    log(20)
    _say(json.dumps({"emitted": emitted}))
    sys.stdin.readline()
    handler.close()
    _say("closed")
    threading.Event().wait(60)


def failing_flusher(spool: str, url: str) -> None:
    import json

    from yai_spool.shipping.retry import RetryPolicy

    fast = RetryPolicy(base=0.01, cap=0.05, max_age=None)
    handler = _handler(spool, url, batch_size=50, retry=fast, close_timeout=1.0)
    logger = _logger(handler)
    for seq in range(200):
        logger.info("record %d", seq, extra={"seq": seq})
    _say("logged")
    sys.stdin.readline()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = handler.stats()["flusher"] or {}
        if stats.get("last_outcome") == "spool_error":
            break
        time.sleep(0.01)
    _say(json.dumps({"failures": (handler.stats()["flusher"] or {}).get("consecutive_failures")}))
    sys.stdin.readline()
    logging.shutdown()


def shutdown(spool: str, url: str, close_timeout: float, count: int) -> None:
    import json

    from yai_spool.spool import Spool

    handler = _handler(spool, url, batch_size=max(1, count // 4), close_timeout=close_timeout)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    log = logging.getLogger("durable.shutdown")
    for seq in range(count):
        log.info("record %d", seq, extra={"seq": seq})
    deadline = time.monotonic() + 30
    while True:  # poll with a deadline until the flusher has a request on the wire
        with Spool.open_readonly(spool) as ro:
            if ro.stats().leased_records:
                break
        if time.monotonic() > deadline:
            _say(json.dumps({"error": "nothing was leased"}))
            return
        time.sleep(0.01)
    started = time.monotonic()
    logging.shutdown()
    took = time.monotonic() - started
    alive = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    _say(json.dumps({"seconds": took, "alive": alive}))


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode in ("produce", "write"):
        produce(argv[1], int(argv[2]), int(argv[3]), report=mode == "produce")
    elif mode == "flusher":
        flusher(argv[1], argv[2], int(argv[3]))
    elif mode == "stages":
        stages(argv[1], int(argv[2]), int(argv[3]))
    elif mode == "pin":
        pin(argv[1], *argv[2:])
    elif mode == "fill":
        fill(argv[1])
    elif mode == "hold":
        hold(argv[1], int(argv[2]))
    elif mode == "failing-flusher":
        failing_flusher(argv[1], argv[2])
    elif mode == "shutdown":
        shutdown(argv[1], argv[2], float(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
