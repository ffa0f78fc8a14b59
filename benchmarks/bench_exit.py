"""How long does the application's exit take when SLS does not answer (or answers slowly)?

Owns: the shutdown-time figures of README ("One bound for the exit", "Guarantees"). A child
process (the application) builds a ``SpoolHandler`` with the default ``flush_timeout`` and
``close_timeout`` (5 s each), logs 400 records, waits until a batch is on the wire, then times
either ``logging.shutdown()`` (flush, then close) or ``handler.close()`` alone, and reports the
threads still alive afterwards. Endpoints:

- ``black hole``: a TCP listener on 127.0.0.1 that accepts and never answers;
- ``2 s latency``: the local SLS emulator answering every request after 2 s.

Nothing here is a test: no assertion on time.

Run: ``python benchmarks/bench_exit.py`` (~1 min). To compare with another checkout, run it
with ``PYTHONPATH=/path/to/that/checkout``.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path
from typing import Any

import benchlib

from yai_spool.emulator import Emulator, EmulatorConfig

_CHILD = textwrap.dedent(
    """
    import json, logging, sys, threading, time
    from yai_spool.handlers.durable import SpoolHandler
    from yai_spool.spool import Spool

    url, spool, how = sys.argv[1], sys.argv[2], sys.argv[3]
    handler = SpoolHandler(project="bench-exit", logstore="exit-store", spool_path=spool,
                           endpoint=url, access_key_id="AK", access_key_secret="SK",
                           batch_size=100, linger=0.01)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for n in range(400):
        logging.getLogger("app").info("record %d", n)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Spool.open_readonly(spool) as ro:
            if ro.stats().leased_records:
                break
        time.sleep(0.01)
    started = time.monotonic()
    if how == "shutdown":
        logging.shutdown()
    else:
        handler.close()
    took = time.monotonic() - started
    alive = [t.name for t in threading.enumerate() if t.name.startswith("yai-spool")]
    print(json.dumps({"seconds": took, "alive": alive}), flush=True)
    """
)


class BlackHole:
    """Accepts connections, reads and discards, never answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        conns = []
        while not self._stop:
            for key, _ in sel.select(0.05):
                if key.fileobj is self.sock:
                    conn, _ = self.sock.accept()
                    conns.append(conn)
                    sel.register(conn, selectors.EVENT_READ)
                elif not key.fileobj.recv(65536):  # type: ignore[union-attr]
                    sel.unregister(key.fileobj)
        for conn in conns:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._thread.join(5)
        self.sock.close()


def run(url: str, how: str, directory: Path) -> dict[str, Any]:
    spool = directory / f"{how}-{os.getpid()}-{len(list(directory.iterdir()))}.spool"
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, url, str(spool), how],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
    )
    lines = proc.stdout.strip().splitlines()
    if not lines:
        return {"seconds": float("nan"), "alive": [f"child failed: {proc.stderr[-300:]}"]}
    out = json.loads(lines[-1])
    out["traceback"] = "Traceback" in proc.stderr
    return out


def main() -> None:
    benchlib.begin("bench_exit", __doc__)
    rows = []
    with tempfile.TemporaryDirectory(prefix="yai-spool-exit-") as tmp:
        directory = Path(tmp)
        hole = BlackHole()
        try:
            for how in ("shutdown", "close"):
                r = run(hole.url, how, directory)
                took = f"{r['seconds']:.2f} s"
                rows.append(["black hole", how, took, r["alive"], r["traceback"]])
        finally:
            hole.close()
        with Emulator(EmulatorConfig(access_keys={"AK": "SK"})) as emu:
            emu.faults.latency(2.0)
            for how in ("shutdown", "close"):
                r = run(emu.url, how, directory)
                took = f"{r['seconds']:.2f} s"
                rows.append(["2 s latency", how, took, r["alive"], r["traceback"]])
    print(
        benchlib.table(
            ["endpoint", "timed call", "took", "handler threads alive after", "traceback"],
            rows,
        )
    )
    print("\nflush_timeout = close_timeout = 5 s (the defaults).")


if __name__ == "__main__":
    main()
