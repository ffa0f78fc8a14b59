"""Helpers shared by the durable (end-to-end delivery) tests.

Everything here is real: SQLite spool files in ``tmp_path``, the local SLS emulator on
127.0.0.1, ``PutLogsClient`` over HTTP, child processes started with ``sys.executable``. The
only knobs turned are the small ones (batch sizes, linger, retry delays, client timeouts) so
that the whole suite stays fast; waits are polls with a deadline or event waits, never sleeps.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from durable_child import AK_ID, AK_SECRET, LOGSTORE, PROJECT

from yai_spool import testing
from yai_spool.emulator import Emulator
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.shipping.flusher import FlusherConfig, ThreadFlusher
from yai_spool.sls.client import ClientTimeouts, PutLogsClient
from yai_spool.spool import Spool
from yai_spool.testing import fast_retry

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CHILD = HERE / "durable_child.py"

__all__ = ["AK_ID", "AK_SECRET", "LOGSTORE", "PROJECT"]  # re-exported from durable_child


#: Retries after ~10-50 ms instead of 0.2-30 s: outages in these tests last well under a second.
FAST_RETRY = fast_retry(cap=0.05)

#: Deadline of every poll in these tests: generous, only hit when something is broken.
DEADLINE = 30.0

#: Handlers and flushers a test started; the ``_cleanup`` fixture closes what a failing
#: test left open, so its threads cannot hold spool locks into the next test.
OPENED: list[SpoolHandler | ThreadFlusher] = []


def close_all() -> None:
    while OPENED:
        item = OPENED.pop()
        if isinstance(item, ThreadFlusher):
            item.stop(1.0)
        else:
            item.close()


def wait_until(predicate: Callable[[], object], timeout: float = DEADLINE) -> bool:
    """The kit's poll (:func:`yai_spool.testing.wait_until`) with this folder's deadline."""
    return testing.wait_until(predicate, timeout)


def client(emu: Emulator, **timeouts: float) -> PutLogsClient:
    """A real PutLogs client for the emulator (small timeouts when given)."""
    kwargs: dict[str, Any] = {}
    if timeouts:
        kwargs["timeouts"] = ClientTimeouts(**timeouts)
    return PutLogsClient(emu.url, access_key_id=AK_ID, access_key_secret=AK_SECRET, **kwargs)


def make_handler(emu: Emulator | None, spool_path: Path, **kwargs: Any) -> SpoolHandler:
    """A handler with test-sized batching/retries; ``emu=None`` for ``flusher="none"``."""
    options: dict[str, Any] = {
        "project": PROJECT,
        "logstore": LOGSTORE,
        "spool_path": spool_path,
        "linger": 0.01,
        "batch_size": 100,
        "retry": FAST_RETRY,
        "flush_timeout": 10.0,
        "close_timeout": 5.0,
    }
    if emu is not None:
        options.update(endpoint=emu.url, access_key_id=AK_ID, access_key_secret=AK_SECRET)
    else:
        options["flusher"] = "none"
    poll_interval = kwargs.pop("poll_interval", 0.05)
    options.update(kwargs)
    handler = SpoolHandler(**options)
    OPENED.append(handler)
    # Records appended by *other* processes are found by polling; the handler has no knob
    # for it (1 s default), so tests that need it shorten it before the flusher starts.
    handler._flusher_config = dataclasses.replace(
        handler._flusher_config,
        poll_interval=poll_interval,
    )
    return handler


def make_logger(name: str, handler: logging.Handler) -> logging.Logger:
    """A non-propagating logger writing only to ``handler`` (leaves root alone)."""
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def emit_range(handler: logging.Handler, start: int, stop: int, name: str = "durable") -> None:
    """Log records numbered ``start..stop-1`` (extra ``seq``) to ``handler`` via logger ``name``."""
    logger = make_logger(name, handler)
    for seq in range(start, stop):
        logger.info("record %d", seq, extra={"seq": seq})


def start_flusher(spool: Spool, emu: Emulator, *, batch: int = 100, **config: Any) -> ThreadFlusher:
    """An in-test ``ThreadFlusher`` over a real client, polling fast."""
    options: dict[str, Any] = {
        "max_batch_records": batch,
        "linger": 0.0,
        "poll_interval": 0.02,
        "retry": FAST_RETRY,
    }
    options.update(config)
    flusher = ThreadFlusher(spool, client(emu), FlusherConfig(**options))
    OPENED.append(flusher)
    flusher.start()
    return flusher


def seq_counts(emu: Emulator, key: str = "seq") -> Counter[int]:
    """How many times each sequence number arrived at the emulator."""
    out: Counter[int] = Counter()
    for log in emu.logs(PROJECT, LOGSTORE):
        value = log.get(key)
        assert value is not None, f"log without {key!r}: {log.contents!r}"
        out[int(value)] += 1
    return out


def assert_exactly_once(emu: Emulator, expected: Iterable[int]) -> None:
    """Every expected sequence number arrived exactly once, and nothing else arrived."""
    counts = seq_counts(emu)
    expected = set(expected)
    missing = sorted(expected - set(counts))
    extra = sorted(set(counts) - expected)
    dups = sorted(s for s, n in counts.items() if n > 1)
    assert not missing, f"{len(missing)} records lost, e.g. {missing[:10]}"
    assert not extra, f"{len(extra)} unexpected records, e.g. {extra[:10]}"
    assert not dups, f"{len(dups)} records duplicated, e.g. {dups[:10]}"


def spool_totals(path: Path) -> tuple[int, int, int]:
    """(ready, leased, dead) records of a spool file, read through a read-only handle."""
    with Spool.open_readonly(path) as ro:
        stats = ro.stats()
    return stats.ready_records, stats.leased_records, stats.dead_records


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.pop("PYTHONWARNINGS", None)
    return env


def spawn_child(
    *args: object, stdout: int | None = subprocess.PIPE, stdin: int | None = None
) -> subprocess.Popen[bytes]:
    """Start ``durable_child.py`` with ``args`` (stdout piped, stderr kept for failures).

    ``stdin=subprocess.PIPE`` for a child that waits for the test's go-ahead lines.
    """
    return subprocess.Popen(
        [sys.executable, str(CHILD), *map(str, args)],
        stdin=stdin,
        stdout=stdout,
        stderr=subprocess.PIPE,
        env=child_env(),
        cwd=str(REPO_ROOT),
    )


def read_line(proc: subprocess.Popen[bytes], timeout: float = DEADLINE) -> str:
    """One line from the child's stdout (the child writes and flushes line by line)."""
    assert proc.stdout is not None
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"child printed nothing for {timeout}s")
    line = proc.stdout.readline().decode()
    if not line:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise AssertionError(f"child exited early (rc={proc.wait()}): {err[-2000:]}")
    return line.strip()


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child and wait for it: it dies where it stands (no atexit, no flush)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=DEADLINE)
    assert proc.returncode == -signal.SIGKILL


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Kill (if still running) and wait for a child; close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=DEADLINE)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers.

    What a firewall that drops replies or an overloaded load balancer looks like from the
    client: the connect succeeds, the request is written, no byte ever comes back. Reads
    and discards what clients send (so their writes never block) until closed.
    """

    def __init__(self) -> None:
        import socket
        import threading

        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = threading.Event()
        self._conns: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="black-hole", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ)
        while not self._closed:
            for key, _ in sel.select(0.05):
                if key.fileobj is self._sock:
                    try:
                        conn, _ = self._sock.accept()
                    except OSError:
                        continue
                    self._conns.append(conn)
                    sel.register(conn, selectors.EVENT_READ)
                    self.accepted.set()
                else:
                    try:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
        sel.close()

    def close(self) -> None:
        self._closed = True
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self._sock.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
