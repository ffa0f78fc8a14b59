"""A spool written by the previous release (schema v1, JSON rows) keeps working after upgrade.

``tests/spool/data/v1-spool.sqlite`` was written by yai-spool 0.1.0 itself (see
``make_v1_spool.py`` next to it): READY rows for two destinations, a lease left by a killed
flusher (LEASED rows), dead letters, counters and a last error. Opening it with this release
upgrades it in place (v1 -> v2 adds columns, rewrites nothing); then everything in it must be
delivered with the same fields, inspected with the real CLI, and its dead letters replayed,
next to records appended after the upgrade (stored logs, codec 1) in the same batches.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from durable_support import child_env, client, wait_until

from yai_spool.emulator import Emulator
from yai_spool.shipping.flusher import FlusherConfig, ThreadFlusher
from yai_spool.shipping.retry import RetryPolicy
from yai_spool.spool import SCHEMA_VERSION, Spool
from yai_spool.spool.destination import encode_dest

V1_FILE = Path(__file__).resolve().parents[1] / "spool" / "data" / "v1-spool.sqlite"
DEST_A = encode_dest("proj", "store-a", "", "host-1", ())
DEST_B = encode_dest("proj", "store-b", "topic-b", "host-1", (("env", "prod"),))
# What make_v1_spool.py stored: records 1..32; 1..4 leased first (1, 2 dead, 3, 4 delivered);
# 5, 10, ... 25 (dest b) leased by the "killed" flusher; every 5th record went to dest b.
DEAD = {1, 2}
DELIVERED_BEFORE = {3, 4}
EXPECTED = set(range(1, 33)) - DEAD - DELIVERED_BEFORE


def v1_entry_message(i: int) -> str:
    return "héllo wörld ✓ 日本語" if i == 31 else f"record {i}"


@pytest.fixture
def v1_spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool" / "app.spool"
    path.parent.mkdir(mode=0o700)
    shutil.copyfile(V1_FILE, path)
    path.chmod(0o600)
    return path


def test_the_fixture_is_a_real_v1_spool() -> None:
    """Guard: the committed file is schema v1 with JSON rows in every state."""
    # immutable: reading the committed file must not leave -wal/-shm files beside it.
    conn = sqlite3.connect(f"file:{V1_FILE}?immutable=1", uri=True)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(ack_queue_spool)")]
        assert "codec" not in columns
        states = dict(conn.execute("SELECT status, count(*) FROM ack_queue_spool GROUP BY 1"))
        assert states == {1: 23, 2: 5}
        assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 2
        first = conn.execute("SELECT data FROM ack_queue_spool ORDER BY _id LIMIT 1").fetchone()
        assert json.loads(first[0])["contents"][0][0] == "message"
    finally:
        conn.close()


def test_v1_spool_upgrades_in_place_and_drains_completely(emu: Emulator, v1_spool: Path) -> None:
    with Spool(v1_spool) as spool:
        stats = spool.stats()
        assert stats.schema_version == SCHEMA_VERSION == 2
        # Nothing was rewritten or lost by the upgrade: same states, same counters.
        assert (stats.ready_records, stats.leased_records, stats.dead_records) == (23, 5, 2)
        assert (stats.delivered, stats.dead_lettered) == (2, 2)
        assert stats.last_error is not None
        assert stats.last_error.code == "ServerBusy"
        # Records appended after the upgrade are stored logs, in the same queue.
        for i in (100, 101):
            spool.append(
                {"time": 1_700_000_500, "time_ns": 5, "contents": [["message", f"new {i}"]]},
                dest=DEST_A,
                level="INFO",
                logger="app.new",
            )
        # max_age=None: the fixture's records were enqueued when the file was written, so
        # any age limit would dead-letter them once the file is older than that limit.
        flusher = ThreadFlusher(
            spool,
            client(emu),
            FlusherConfig(max_batch_records=7, linger=0.0, poll_interval=0.02,
                          retry=RetryPolicy(base=0.01, cap=0.05, max_age=None)),
        )  # fmt: skip
        flusher.start()
        try:
            # The killed flusher's lease is recovered when this flusher takes the lock.
            assert wait_until(
                lambda: spool.stats().ready_records + spool.stats().leased_records == 0
            )
        finally:
            flusher.stop(5)
        stats = spool.stats()
        assert stats.leases_recovered >= 5
        assert stats.delivered == 2 + len(EXPECTED) + 2
        assert stats.dead_records == 2

    logs_a = emu.logs("proj", "store-a")
    logs_b = emu.logs("proj", "store-b")
    got = {int(log.text("message").split()[-1]): log for log in logs_a + logs_b
           if log.text("message").startswith("record ")}  # fmt: skip
    unicode = [log for log in logs_a if log.text("message") == v1_entry_message(31)]
    assert len(unicode) == 1
    got[31] = unicode[0]
    assert set(got) == EXPECTED
    for i, log in got.items():
        # Every field of the v1 entry arrives byte-exact, in its destination.
        assert log.time == 1_700_000_000 + i
        assert log.time_ns == (0 if i == 32 else (i * 7919) % 1_000_000_000)
        assert log.text("levelname") == ("WARNING" if i % 3 == 0 else "INFO")
        assert log.text("name") == ("app.billing" if i % 2 else "app.http")
        assert log.text("order_id") == f"o-{i}"
        if i % 5 == 0:
            assert (log.logstore, log.topic, log.tags) == ("store-b", "topic-b", (("env", "prod"),))
        else:
            assert (log.logstore, log.topic, log.tags) == ("store-a", "", ())
    assert sorted(log.text("message") for log in logs_a if log.text("message").startswith("new")) \
        == ["new 100", "new 101"]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "yai_spool.cli", *args],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
        check=False,
    )


def test_v1_dead_letters_and_rows_read_and_replay_after_upgrade(
    emu: Emulator, v1_spool: Path, tmp_path: Path
) -> None:
    # The real CLI on the not-yet-upgraded file (read-only: it must not upgrade it) ...
    peek = _cli("peek", str(v1_spool), "--state", "dead", "--json")
    assert peek.returncode == 0, peek.stderr
    dead = [json.loads(line) for line in peek.stdout.splitlines() if line.strip()]
    assert [d["error_code"] for d in dead] == ["InvalidValue", "InvalidValue"]
    assert [dict(d["entry"]["contents"])["message"] for d in dead] == ["record 1", "record 2"]
    with Spool(v1_spool) as spool:  # ... and after the upgrade, with new rows beside them
        spool.append({"time": 1, "time_ns": 0, "contents": [["message", "fresh"]]}, dest=DEST_A)
    out = tmp_path / "ready.jsonl"
    export = _cli("export", str(v1_spool), "--state", "ready", "-o", str(out))
    assert export.returncode == 0, export.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    messages = [dict(r["entry"]["contents"])["message"] for r in rows]
    assert "record 6" in messages
    assert "fresh" in messages
    assert v1_entry_message(31) in messages
    filtered = _cli("peek", str(v1_spool), "--level", "WARNING", "--json")
    assert filtered.returncode == 0, filtered.stderr
    levels = {dict(json.loads(x)["entry"]["contents"]).get("levelname")
              for x in filtered.stdout.splitlines() if x.strip()}  # fmt: skip
    assert levels == {"WARNING"}

    replay = _cli("replay", str(v1_spool))
    assert replay.returncode == 0, replay.stderr
    with Spool(v1_spool) as spool:
        assert spool.stats().dead_records == 0
        flusher = ThreadFlusher(spool, client(emu), FlusherConfig(linger=0.0, poll_interval=0.02))
        flusher.start()
        try:
            assert flusher.flush(30)
        finally:
            flusher.stop(5)
    arrived = {log.text("message") for log in emu.logs("proj", "store-a")}
    assert {"record 1", "record 2", "fresh"} <= arrived  # the replayed v1 dead letters
