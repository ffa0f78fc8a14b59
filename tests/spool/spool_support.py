"""Helpers shared by the spool tests: a fake clock, entries, crash simulation, child processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from yai_spool.spool import Spool

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """Injected wall clock: tests move time explicitly."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def entry(seq: int, pad: int = 0, **extra: Any) -> dict[str, Any]:
    """A mapper-shaped entry carrying its sequence number."""
    contents = [["seq", str(seq)], ["message", "x" * pad]]
    return {"time": 1_700_000_000, "time_ns": 0, "contents": contents, **extra}


def seq_of(e: dict[str, Any]) -> int:
    return int(e["contents"][0][1])


def crash(spool: Spool) -> None:
    """What kill -9 does to a spool owner: connections and flusher lock vanish, no cleanup.

    Closing the SQLite connection drops no committed data (that is WAL's job); leases stay in
    the file with the dead owner's tokens, exactly as after a real crash.
    """
    # kill -9 ends every thread of the process first: the housekeeper too (it would
    # otherwise go on using the connections closed below).
    keeper = spool._housekeeper
    if keeper is not None:
        keeper.stop()
    spool._housekeeper = None
    store = spool._store
    if store is not None:
        store._conn.close()
    ckpt = spool._ckpt_conn
    if ckpt is not None:
        ckpt.close()
    lock = spool._flusher_lock
    if lock is not None and lock._fd is not None:
        os.close(lock._fd)
        lock._fd = None
    spool._closed = True
    spool._store = None
    spool._ckpt_conn = None


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def start_child(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Run ``code`` (dedented) in a fresh interpreter with the repo importable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=child_env(),
        **kwargs,
    )


def run_child_ok(code: str, *args: str, timeout: float) -> None:
    """Run ``code`` in a child; it must exit 0 having printed exactly ``ok``."""
    proc = start_child(code, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        kill_quietly(proc)
    assert proc.returncode == 0, (out.decode(), err.decode())
    assert out.decode().split() == ["ok"]


def read_line(stream: Any) -> str:
    line = stream.readline()
    if not line:
        raise EOFError("child closed its output")
    return line.decode().strip()


def kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()
