"""Every field survives handler -> spool -> flusher -> PutLogs -> emulator, byte for byte.

Expected values are computed from the very ``LogRecord`` objects the handler saw (a capturing
handler sits on the same logger), following the documented contract of ``mapping.py``: the
fixed content order, JSON for containers, ``str()`` for scalars, exception and stack in their
own keys, request context last, topic/source/tags as LogGroup fields.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from durable_support import LOGSTORE, PROJECT, make_handler, make_logger
from shared_support import SDK_DEFAULT_FIELDS

from yai_spool.emulator import Emulator
from yai_spool.emulator.store import StoredLog
from yai_spool.handlers.context import bind

FIELDS = SDK_DEFAULT_FIELDS


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def expected_contents(
    record: logging.LogRecord, extras: list[tuple[str, str]], context: list[tuple[str, str]]
) -> list[tuple[str, bytes]]:
    pairs = [("message", record.getMessage())]
    pairs += [(attr, str(getattr(record, attr))) for attr in FIELDS]
    if record.exc_info:
        pairs.append(("exc_text", logging.Formatter().formatException(record.exc_info)))
    if record.stack_info:
        pairs.append(("stack_info", record.stack_info))
    pairs += extras + context
    return [(k, v.encode("utf-8")) for k, v in pairs]


def expected_ns(record: logging.LogRecord) -> tuple[int, int]:
    sec = int(record.created)
    return sec, int((record.created - sec) * 1e9 + 0.5)


def by_message(logs: list[StoredLog]) -> dict[bytes, StoredLog]:
    out = {log.get("message"): log for log in logs}
    assert len(out) == len(logs)
    return out  # type: ignore[return-value]


def test_every_field_round_trips_byte_exact(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(
        emu, spool_path, topic="app-topic", source="host-a", tags={"env": "test", "team": "x"}
    )
    capture = Capture()
    logger = make_logger("durable.fields", handler)
    logger.addHandler(capture)

    with bind(trace_id="trace-0123456789abcdef"):
        logger.warning(
            "héllo %s ✓ 日本",
            "wörld",
            extra={
                "user": "bob",
                "count": 3,
                "ratio": 2.5,
                "flag": True,
                "obj": {"a": [1, 2], "b": None, "ü": "ß"},
                "items": [1, "x", None],
                "nothing": None,
                "created_ns": 1_700_000_000_123_456_789,
            },
        )
    try:
        raise ValueError("kaputt ✗")
    except ValueError:
        logger.exception("failed %d", 42, stack_info=True)
    logger.info(
        "override",
        extra={"sls_topic": "t2", "sls_source": "s2", "sls_tags": {"req": "r1", "env": "prod"}},
    )
    logger.debug("plain")

    assert emu.wait_for_count(PROJECT, LOGSTORE, 4, timeout=30)
    handler.close()
    logs = by_message(emu.logs(PROJECT, LOGSTORE))
    assert len(logs) == 4
    rec_a, rec_b, rec_c, rec_d = capture.records

    a = logs["héllo wörld ✓ 日本".encode()]
    assert list(a.contents) == expected_contents(
        rec_a,
        [
            ("user", "bob"),
            ("count", "3"),
            ("ratio", "2.5"),
            ("flag", "True"),
            ("obj", json.dumps({"a": [1, 2], "b": None, "ü": "ß"}, ensure_ascii=False)),
            ("items", '[1, "x", null]'),
        ],
        [("trace_id", "trace-0123456789abcdef")],
    )
    assert (a.time, a.time_ns) == (1_700_000_000, 123_456_789)  # nanoseconds, exactly
    assert (a.topic, a.source, a.tags) == ("app-topic", "host-a", (("env", "test"), ("team", "x")))

    b = logs[b"failed 42"]
    assert list(b.contents) == expected_contents(rec_b, [], [])
    assert b"ValueError: kaputt \xe2\x9c\x97" in b.get("exc_text")  # type: ignore[operator]
    assert b.get("stack_info").startswith(b"Stack (most recent call last):")  # type: ignore[union-attr]
    assert (b.time, b.time_ns) == expected_ns(rec_b)
    assert (b.topic, b.source, b.tags) == ("app-topic", "host-a", (("env", "test"), ("team", "x")))

    c = logs[b"override"]
    assert list(c.contents) == expected_contents(rec_c, [], [])  # sls_* are not contents
    assert (c.topic, c.source) == ("t2", "s2")
    # Per-record tags merge over the handler's: env overridden, team kept, req added.
    assert c.tags == (("env", "prod"), ("req", "r1"), ("team", "x"))

    d = logs[b"plain"]
    assert list(d.contents) == expected_contents(rec_d, [], [])  # no context outside bind()
    assert (d.time, d.time_ns) == expected_ns(rec_d)
    assert (d.topic, d.source, d.tags) == ("app-topic", "host-a", (("env", "test"), ("team", "x")))


def test_batches_respect_the_record_limit(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, batch_size=100, linger=0.05)
    logger = make_logger("durable.batch", handler)
    for seq in range(1000):
        logger.info("record %d", seq, extra={"seq": seq})
    assert emu.wait_for_count(PROJECT, LOGSTORE, 1000, timeout=30)
    handler.close()

    requests = [r for r in emu.requests(PROJECT, LOGSTORE) if r.outcome == "accepted"]
    assert sum(r.log_count for r in requests) == 1000
    assert max(r.log_count for r in requests) <= 100
    assert len(requests) >= 10


def test_batches_respect_the_byte_limit(emu: Emulator, spool_path: Path) -> None:
    handler = make_handler(emu, spool_path, batch_size=100, batch_bytes=2048, linger=0.05)
    logger = make_logger("durable.bytes", handler)
    for seq in range(300):
        logger.info("record %d %s", seq, "x" * 100, extra={"seq": seq})
    assert emu.wait_for_count(PROJECT, LOGSTORE, 300, timeout=30)
    handler.close()

    requests = [r for r in emu.requests(PROJECT, LOGSTORE) if r.outcome == "accepted"]
    assert sum(r.log_count for r in requests) == 300
    # The spool's JSON is larger than the protobuf it becomes, so the raw (uncompressed)
    # PutLogs body stays within the configured bytes; one record alone is ~400 bytes.
    assert max(r.raw_size or 0 for r in requests) <= 2048
    assert max(r.log_count for r in requests) <= 100
    assert len(requests) >= 300 * 400 // 2048
