"""Helpers shared by the delivery-mode tests (tests/modes).

Everything is real: the local SLS emulator on 127.0.0.1, our HTTP clients, SQLite spool files
in ``tmp_path``, uvicorn in a subprocess. Only small knobs are turned (batch sizes, linger,
retry delays, timeouts) to keep the suite fast; waits poll with a deadline or wait on an
event, never sleep as synchronisation.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from yai_spool.emulator import Emulator
from yai_spool.emulator.store import StoredLog
from yai_spool.testing import fast_retry

REPO = Path(__file__).resolve().parents[2]
# uvicorn from a tiny launcher whose alarm ends it even if the test dies: the server stops
# by itself. SIGALRM's default action terminates the process.
LAUNCHER = "import signal, sys, uvicorn; signal.alarm(120); sys.exit(uvicorn.main())"

PROJECT = "modes-proj"
LOGSTORE = "modes-store"
AK_ID = "LTAI5tModesKey"
AK_SECRET = "modes-secret-do-not-leak"

#: Deadline of every poll: generous, only reached when something is broken.
DEADLINE = 30.0

#: Retries after ~10-50 ms: outages in these tests last well under a second.
FAST_RETRY = fast_retry(cap=0.05)


def destination(emu: Emulator, **extra: Any) -> dict[str, Any]:
    """Keyword arguments pointing any handler at the emulator."""
    return {
        "project": PROJECT,
        "logstore": LOGSTORE,
        "endpoint": emu.url,
        "access_key_id": AK_ID,
        "access_key_secret": AK_SECRET,
        "source": "test-host",
        **extra,
    }


def toml_defaults(emu: Emulator) -> str:
    """The ``[defaults]`` table of a yai-spool TOML file pointing at the emulator."""
    return f"""
[defaults]
endpoint = "{emu.url}"
project = "{PROJECT}"
logstore = "{LOGSTORE}"
"""


def make_logger(handler: logging.Handler) -> logging.Logger:
    """A fresh non-propagating logger writing only to ``handler``."""
    logger = logging.getLogger(f"modes-test.{uuid.uuid4().hex[:8]}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def log_numbered(logger: logging.Logger, prefix: str, count: int) -> list[str]:
    """Log ``"<prefix> 0"`` ... ``"<prefix> <count-1>"`` at INFO; returns those messages."""
    for i in range(count):
        logger.info("%s %d", prefix, i)
    return [f"{prefix} {i}" for i in range(count)]


def stored(emu: Emulator, logstore: str = LOGSTORE) -> list[StoredLog]:
    """Every log the emulator holds for our project and ``logstore``, in arrival order."""
    return emu.logs(PROJECT, logstore)


def messages(emu: Emulator, logstore: str = LOGSTORE) -> list[str]:
    """The ``message`` of every log the emulator holds, in arrival order."""
    return [log.text("message") for log in stored(emu, logstore)]


def field(log: Any, key: str) -> str | None:
    """One content of a stored log as text (None if absent)."""
    return log.text(key)


@contextlib.contextmanager
def serve_example(
    app: str, env: Mapping[str, str]
) -> Iterator[tuple[Any, subprocess.Popen[bytes]]]:
    """uvicorn serving ``examples/<app>`` (``"fastapi_app:app"``) with ``env`` added to ours.

    The socket is bound here, before uvicorn starts (a free port, no race); yields an httpx
    client on it and the server process, which is killed at the end if still running.
    """
    import httpx

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    full_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **env,
    }
    full_env.pop("PYTHONWARNINGS", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, "--app-dir", str(REPO / "examples"), app,
         "--fd", str(listener.fileno()), "--log-level", "warning"],
        pass_fds=[listener.fileno()],
        env=full_env,
        cwd=str(REPO),
        stderr=subprocess.PIPE,
    )  # fmt: skip
    listener.close()  # the child holds its own copy
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE, trust_env=False)
    try:
        yield client, proc
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(DEADLINE)
        if proc.stderr is not None:
            proc.stderr.close()


#: The incoming W3C trace context of the example apps' first request (trace id, parent span).
INCOMING_TRACE = "0af7651916cd43dd8448eb211c80319c"
INCOMING_PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{INCOMING_TRACE}-{INCOMING_PARENT}-01"


def call_example(client: Any) -> tuple[Any, Any, Any]:
    """The requests every example app answers, in order: an order under ``TRACEPARENT``
    (asserted 200), a report with ``x-request-id: req-report-1``, a checkout with neither."""
    order = client.get("/orders/o-7", headers={"traceparent": TRACEPARENT})
    assert order.status_code == 200, order.text
    report = client.get("/report", headers={"x-request-id": "req-report-1"})
    return order, report, client.post("/checkout/ana")


def stop_example(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the graceful shutdown whose lifespan drains the queue."""
    proc.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it captured (its own rule).
    assert proc.wait(DEADLINE) in (0, -signal.SIGTERM)


@contextlib.contextmanager
def configured(
    logger_name: str, logger_level: str = "INFO", **entry: Any
) -> Iterator[tuple[logging.Logger, logging.Handler]]:
    """``dictConfig`` with one ``{"()": "yai_spool.make_handler", **entry}`` handler on
    ``logger_name``; yields the logger and the handler, removed and closed at the end."""
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {"sls": {"()": "yai_spool.make_handler", **entry}},
            "loggers": {logger_name: {"handlers": ["sls"], "level": logger_level}},
        }
    )
    logger = logging.getLogger(logger_name)
    (handler,) = logger.handlers
    try:
        yield logger, handler
    finally:
        logger.handlers.clear()
        handler.close()
