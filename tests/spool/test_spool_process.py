"""Real processes: kill -9 mid-append, concurrent producers, the flusher lock, fork, readers."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
from spool_support import kill_quietly, read_line, run_child_ok, start_child

from yai_spool.spool import FlusherLock, Spool, SpoolConfig

APPENDER = """
import os, sys
from yai_spool.spool import Spool, SpoolConfig
path, sync, start, dest = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
limit = int(sys.argv[5]) if len(sys.argv) > 5 else -1
spool = Spool(path, SpoolConfig(synchronous=sync, integrity_check="none"))
os.write(1, b"ready\\n")
i = start
while i != limit:
    spool.append(
        {"time": 1, "contents": [["seq", str(i)], ["pad", "x" * (i % 300)]]}, dest=dest
    )
    os.write(1, b"%d\\n" % i)  # only after append returned: this seq is acknowledged
    i += 1
spool.close()
os.write(1, b"done\\n")
"""


def all_rows(path: Path) -> list[tuple[int, str, int]]:
    """(id, dest, seq) of every READY/LEASED row, read through a read-only handle."""
    ro = Spool.open_readonly(path)
    try:
        assert ro._store is not None
        return [(r["id"], "", int(dict(r["data"]["contents"])["seq"])) for r in ro._store.queue()]
    finally:
        ro.close()


@pytest.mark.slow
@pytest.mark.parametrize("sync", ["NORMAL", "FULL"])
def test_kill_9_mid_append_loses_no_acknowledged_record(tmp_path: Path, sync: str) -> None:
    path = tmp_path / "spool.db"
    rng = random.Random(1234)
    acked: set[int] = set()
    in_flight: set[int] = set()  # the append running at each kill may or may not have committed
    start = 0
    rounds = 4 if sync == "NORMAL" else 2
    for _ in range(rounds):
        proc = start_child(APPENDER, str(path), sync, str(start), "d", stdout=subprocess.PIPE)
        try:
            assert read_line(proc.stdout) == "ready"
            target = rng.randrange(50, 600)
            last = start - 1
            while last - start + 1 < target:
                last = int(read_line(proc.stdout))
                acked.add(last)
            proc.send_signal(signal.SIGKILL)
            # Acks written before the kill are still in the pipe: they count too.
            for line in proc.stdout.read().decode().split():
                last = int(line)
                acked.add(last)
        finally:
            kill_quietly(proc)
        assert proc.returncode == -signal.SIGKILL
        in_flight.add(last + 1)
        present = {seq for _, _, seq in all_rows(path)}
        assert acked <= present, f"lost acknowledged records: {sorted(acked - present)[:10]}"
        assert present - acked <= in_flight
        start = max(present) + 1
    with Spool(path) as s:  # and the file is sound after all those kills
        assert s.open_events == ()
        assert s.stats().appended == len(present)


def test_two_processes_append_concurrently(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).close()
    n = 1500
    procs = [
        start_child(APPENDER, str(path), "NORMAL", "0", dest, str(n), stdout=subprocess.PIPE)
        for dest in ("w1", "w2")
    ]
    try:
        for proc in procs:
            out = proc.stdout.read().decode().split()
            assert out[0] == "ready"
            assert out[-1] == "done"
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            kill_quietly(proc)
    with Spool(path) as s:
        seen: dict[str, list[int]] = {"w1": [], "w2": []}
        while (batch := s.lease(1000, 1 << 22, lease_seconds=30)) is not None:
            seen[batch.dest] += [int(dict(e["contents"])["seq"]) for e in batch.entries]
            s.ack(batch)
        assert seen == {"w1": list(range(n)), "w2": list(range(n))}  # all, each in order
        assert s.stats().appended == 2 * n


HOLDER = """
import os, sys
from yai_spool.spool import Spool
spool = Spool(sys.argv[1])
for i in range(5):
    spool.append({"time": 1, "contents": [["seq", str(i)]]}, dest="d")
assert spool.acquire_flusher()
batch = spool.lease(100, 1 << 20, lease_seconds=3600)
os.write(1, b"locked %d\\n" % len(batch))
sys.stdin.readline()  # hold everything until killed
"""


def test_flusher_lock_is_exclusive_across_processes_and_dies_with_its_holder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool.db"
    proc = start_child(HOLDER, str(path), stdout=subprocess.PIPE, stdin=subprocess.PIPE)
    try:
        assert read_line(proc.stdout) == "locked 5"
        lock = FlusherLock(path)
        assert lock.holder_pid() == proc.pid
        assert not lock.acquire()
        with Spool(path) as s:
            assert not s.acquire_flusher()
            assert s.stats().flusher_pid == proc.pid
            assert s.stats().leased_records == 5
            assert s.lease(100, 1 << 20, lease_seconds=30) is None  # the holder's lease is live
            proc.kill()
            proc.wait(timeout=30)
            assert lock.holder_pid() is None  # the kernel dropped the flock with the process
            assert s.acquire_flusher()
            assert FlusherLock(path).holder_pid() == os.getpid()
            stats = s.stats()
            assert (stats.leased_records, stats.ready_records, stats.leases_recovered) == (0, 5, 5)
            batch = s.lease(100, 1 << 20, lease_seconds=30)
            assert batch is not None
            assert batch.attempts == (1,) * 5
            s.release_flusher()
            assert lock.holder_pid() is None
            assert lock.acquire()
            lock.release()
    finally:
        kill_quietly(proc)


FORKER = """
import os, sys
from yai_spool.spool import Spool, FlusherLock
spool = Spool(sys.argv[1])
assert spool.acquire_flusher()
spool.append({"time": 1, "contents": [["seq", "0"], ["who", "parent"]]}, dest="d")
pid = os.fork()
if pid == 0:
    try:
        assert not spool.is_flusher            # the lock stays the parent's
        assert not spool.acquire_flusher()
        for i in range(1, 101):
            # new connection, new owner
            spool.append({"time": 1, "contents": [["seq", str(i)], ["who", "child"]]}, dest="d")
        assert spool.stats().ready_records == 101
        code = 0
    except BaseException as exc:
        os.write(2, repr(exc).encode())
        code = 1
    os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
assert spool.is_flusher and FlusherLock(sys.argv[1]).holder_pid() == os.getpid()
for i in range(101, 151):
    # the parent's connection still works
    spool.append({"time": 1, "contents": [["seq", str(i)], ["who", "parent"]]}, dest="d")
batch = spool.lease(1000, 1 << 22, lease_seconds=30)
assert [int(dict(e["contents"])["seq"]) for e in batch.entries] == list(range(151)), batch.ids
assert spool.ack(batch) == 151
check = spool._store.conn.execute("PRAGMA quick_check").fetchall()
assert check == [("ok",)], check
os.write(1, b"ok\\n")
"""


def test_fork_child_gets_its_own_connection(tmp_path: Path) -> None:
    run_child_ok(FORKER, str(tmp_path / "spool.db"), timeout=60)


def test_read_only_view_of_a_live_spool(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    proc = start_child(APPENDER, str(path), "NORMAL", "0", "d", stdout=subprocess.PIPE)
    try:
        assert read_line(proc.stdout) == "ready"
        ro = Spool.open_readonly(path)
        try:
            seen = []
            acked = int(read_line(proc.stdout))
            for _ in range(5):
                stats = ro.stats()
                assert stats.appended >= acked + 1  # every acknowledged append is visible
                seen.append(stats.appended)
                # Let the writer move on: wait for it to acknowledge more than we just saw
                # (its acks are read from its output, so a loaded machine only slows this).
                while acked < stats.appended:
                    acked = int(read_line(proc.stdout))
            assert seen == sorted(seen)
            assert seen[0] < seen[-1]
        finally:
            ro.close()
        more = int(read_line(proc.stdout))
        assert more >= acked  # the writer never waited for the reader
    finally:
        kill_quietly(proc)
    with Spool(path) as s:
        assert s.stats().ready_records > 0
    assert SpoolConfig().synchronous == "NORMAL"
