"""Helpers for the CLI tests: run ``yai-spool`` as a subprocess, build real spools, children.

Owns: the sentinel credentials (every CLI run gets them in its environment, and every run's
output is checked for them), ``run_cli``, spool builders over the public ``Spool`` API, and
``wait_for`` (poll with a deadline; never a bare sleep as synchronisation).

Run as a script, it is a child process of the live tests::

    python cli_support.py produce SPOOL   # SpoolHandler(flusher="none") logs until stdin
                                          # closes, then prints how many records it logged
    python cli_support.py flush SPOOL URL # ThreadFlusher ships SPOOL to URL (credentials
                                          # from the environment) until stdin closes
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yai_spool.sls.credentials import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_SECURITY_TOKEN
from yai_spool.spool import Spool
from yai_spool.spool.destination import encode_dest

HERE = Path(__file__).resolve().parent
PROJECT = "cli-project"
LOGSTORE = "cli-logstore"
DEST = encode_dest(PROJECT, LOGSTORE)

KEY_ID = "LTAI5tCliTestKey"
# Sentinels: every CLI run gets them in its environment; no output may ever contain one.
SECRET = "cli-sentinel-secret-a1b2c3d4e5"
TOKEN = "STS.cli-sentinel-token-f6e7d8"
WRONG_SECRET = "cli-sentinel-wrong-secret-9z8y7x"
SENTINELS = (SECRET, TOKEN, WRONG_SECRET)

# Keep every CLI run away from the user's real state directory and credentials.
_SCRUB = (
    ENV_ACCESS_KEY_ID,
    ENV_ACCESS_KEY_SECRET,
    ENV_SECURITY_TOKEN,
    "CREDENTIALS_DIRECTORY",
    "YAI_SPOOL_CONFIG",
    "YAI_SPOOL_ENDPOINT",
)


def cli_env(
    *, credentials: bool = True, secret: str = SECRET, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a CLI child: sentinel credentials, wide terminal, no colours."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(COLUMNS="200", NO_COLOR="1", TERM="dumb", PYTHONPATH=str(HERE))
    if credentials:
        env.update(
            {ENV_ACCESS_KEY_ID: KEY_ID, ENV_ACCESS_KEY_SECRET: secret, ENV_SECURITY_TOKEN: TOKEN}
        )
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class Result:
    """One finished CLI run."""

    code: int
    stdout: str
    stderr: str

    @property
    def first_line(self) -> str:
        return self.stdout.splitlines()[0] if self.stdout else ""

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def run_cli(
    *args: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    prefix: Sequence[str] = (),
    stdin: int | None = subprocess.DEVNULL,
    timeout: float = 60.0,
) -> Result:
    """Run ``python -m yai_spool.cli ARGS`` and check that no sentinel secret was printed."""
    command = [*prefix, sys.executable, "-m", "yai_spool.cli", *map(str, args)]
    proc = subprocess.run(
        command,
        env=dict(env) if env is not None else cli_env(),
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert_no_secret(proc.stdout, proc.stderr)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def assert_no_secret(*outputs: str) -> None:
    for text in outputs:
        for sentinel in SENTINELS:
            assert sentinel not in text, "a secret was printed"


def wait_for(
    predicate: Callable[[], Any], *, timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        pause.wait(0.02)


# ------------------------------------------------------------------------------ spools


def entry(
    message: str, *, level: str = "INFO", logger: str = "app", at: float | None = None
) -> dict[str, Any]:
    """A spool entry shaped like ``RecordMapper.map`` output."""
    t = time.time() if at is None else at
    return {
        "time": int(t),
        "time_ns": int((t % 1) * 1e9),
        "contents": [["message", message], ["levelname", level], ["name", logger]],
        "topic": None,
        "source": None,
        "tags": None,
    }


def append(path: Path, entries: Iterable[dict[str, Any]], *, age: float = 0.0) -> None:
    """Append entries as if they had been spooled ``age`` seconds ago."""
    with Spool(path, clock=lambda: time.time() - age) as spool:
        for e in entries:
            spool.append(e, dest=DEST)


def make_dead(
    path: Path,
    entries: Sequence[dict[str, Any]],
    *,
    code: str,
    message: str = "refused by the test",
    request_id: str = "REQDEAD0000000000000000",
    age: float = 0.0,
) -> None:
    """Dead-letter ``entries`` through the real lease/dead_letter path.

    Call on a spool without READY records: a lease takes the oldest READY records first.
    """
    with Spool(path, clock=lambda: time.time() - age) as spool:
        for e in entries:
            spool.append(e, dest=DEST)
        batch = spool.lease(len(entries), 1 << 30, lease_seconds=60)
        assert batch is not None
        assert len(batch) == len(entries)
        spool.dead_letter(batch, error_code=code, message=message, request_id=request_id)


def stats(path: Path) -> Any:
    with Spool.open_readonly(path) as spool:
        return spool.stats()


def drop_dac_prefix() -> list[str] | None:
    """As root, a command prefix that drops the capabilities bypassing file permissions.

    Root ignores chmod (CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH); ``setpriv`` removes both from
    the child's bounding set so it meets permissions like any user. None if unavailable.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]


# ------------------------------------------------------------------------------ children


class Child:
    """A helper child process (this file run as a script); stops when its stdin closes."""

    def __init__(self, *args: str, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "cli_support.py"), *args],
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def finish(self, timeout: float = 30.0) -> str:
        """Close stdin (the stop signal), wait, and return stdout; fails on a bad exit."""
        out, err = self.proc.communicate(input="", timeout=timeout)
        assert self.proc.returncode == 0, err[-2000:]
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def _until_stdin_closes() -> threading.Event:
    done = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


def _produce(spool_path: str) -> None:
    from yai_spool.handlers.durable import SpoolHandler

    handler = SpoolHandler(
        project=PROJECT, logstore=LOGSTORE, spool_path=spool_path, flusher="none"
    )
    logger = logging.getLogger("app.worker")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    done = _until_stdin_closes()
    count = 0
    while not done.is_set():
        level = (logging.INFO, logging.WARNING, logging.ERROR)[count % 3]
        logger.log(level, "request %d served", count, extra={"trace_id": f"t-{count}"})
        count += 1
        done.wait(0.002)  # pacing, not synchronisation: a steady trickle of records
    logger.removeHandler(handler)
    handler.close()
    print(count)


def _flush(spool_path: str, url: str) -> None:
    from yai_spool.shipping.flusher import FlusherConfig, ThreadFlusher
    from yai_spool.sls.client import PutLogsClient

    spool = Spool(spool_path)
    flusher = ThreadFlusher(
        spool,
        PutLogsClient(url),  # credentials from the environment
        FlusherConfig(linger=0.05, poll_interval=0.05, checkpoint_interval=0.2),
    )
    flusher.start()
    done = _until_stdin_closes()
    done.wait()
    flusher.stop(drain_timeout=5.0)
    spool.close()


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "produce":
        _produce(*rest)
    elif mode == "flush":
        _flush(*rest)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
