"""Helpers for the daemon tests: a real sd_notify listener, the daemon as a subprocess, spools.

Owns nothing of the product. Every wait polls with a deadline or blocks on a socket with a
timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from yai_spool.emulator import Emulator
from yai_spool.handlers.durable import SpoolHandler
from yai_spool.spool import Spool
from yai_spool.testing import wait_until

ACCESS_KEY_ID = "LTAI5tDaemonKeyId"
ACCESS_KEY_SECRET = "DaemonSecret-sentinel-5f1c9a"  # must never appear in any output
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for the daemon's metrics_port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NotifyListener:
    """A real ``$NOTIFY_SOCKET``: an AF_UNIX datagram socket bound by the test."""

    def __init__(self, directory: Path | None = None, *, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"yai-spool-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            assert directory is not None
            path = directory / "notify.sock"
            self.sock.bind(str(path))
            self.address = str(path)
        self.messages: list[dict[str, str]] = []
        self.raw: list[str] = []

    def _receive(self, timeout: float) -> bool:
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data = self.sock.recv(65536).decode()
        except TimeoutError:
            return False
        self.raw.append(data)
        self.messages.append(dict(line.split("=", 1) for line in data.split("\n") if line))
        return True

    def wait_for(
        self, predicate: Callable[[dict[str, str]], bool], timeout: float = 15.0
    ) -> dict[str, str] | None:
        """First message (already received or new) matching ``predicate``, None on timeout."""
        seen = 0
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[seen:]:
                if predicate(message):
                    return message
            seen = len(self.messages)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._receive(left)

    def wait_key(self, key: str, value: str = "1", timeout: float = 15.0) -> dict[str, str] | None:
        return self.wait_for(lambda m: m.get(key) == value, timeout)

    def drain(self, duration: float) -> list[dict[str, str]]:
        """Collect every message arriving during ``duration`` seconds."""
        start = len(self.messages)
        deadline = time.monotonic() + duration
        while (left := deadline - time.monotonic()) > 0:
            self._receive(left)
        return self.messages[start:]

    def index(self, key: str) -> int:
        """Position of the first message carrying ``key`` (-1 if none)."""
        return next((i for i, m in enumerate(self.messages) if key in m), -1)

    def close(self) -> None:
        self.sock.close()


def daemon_env(notify: NotifyListener | None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALIBABA_CLOUD_", "YAI_SPOOL_", "NOTIFY_", "WATCHDOG_"))
        and k not in ("CREDENTIALS_DIRECTORY", "JOURNAL_STREAM")
    }
    env["ALIBABA_CLOUD_ACCESS_KEY_ID"] = ACCESS_KEY_ID
    env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = ACCESS_KEY_SECRET
    env["PYTHONUNBUFFERED"] = "1"
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.address
    env.update(extra)
    return {k: v for k, v in env.items() if v != ""}


class DaemonProcess:
    """``yai-spool run`` as a real subprocess; stdout/stderr go to files in ``workdir``."""

    def __init__(
        self,
        args: Iterable[str],
        env: Mapping[str, str],
        workdir: Path,
        *,
        prefix: Iterable[str] = (),
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.stdout_path = workdir / f"daemon-{tag}.out"
        self.stderr_path = workdir / f"daemon-{tag}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "yai_spool.cli", "run", *args],
                env=dict(env),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_stderr(self, text: str, timeout: float = 15.0) -> bool:
        return wait_until(lambda: text in self.stderr, timeout)

    def stop(self) -> None:
        """Teardown: SIGTERM, then SIGKILL if it does not exit (never left running)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def toml_config(
    path: Path,
    *,
    endpoint: str | None,
    directories: Iterable[Path] = (),
    spools: Iterable[tuple[Path, Mapping[str, str]]] = (),
    top: Mapping[str, object] | None = None,
    shipping: Mapping[str, object] | None = None,
    defaults: Mapping[str, str] | None = None,
) -> Path:
    """Write a daemon TOML file (values rendered as TOML literals)."""

    def lit(value: object) -> str:
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    lines = [f"{k} = {lit(v)}" for k, v in {"status_interval": 0.5, **(top or {})}.items()]
    lines.append("[defaults]")
    if endpoint is not None:
        lines.append(f"endpoint = {lit(endpoint)}")
    lines += [f"{k} = {lit(v)}" for k, v in (defaults or {}).items()]
    if shipping:
        lines.append("[shipping]")
        lines += [f"{k} = {lit(v)}" for k, v in shipping.items()]
    for directory in directories:
        lines += ["[[directories]]", f"path = {lit(str(directory))}"]
    for spool, keys in spools:
        lines += ["[[spools]]", f"path = {lit(str(spool))}"]
        lines += [f"{k} = {lit(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def spool_records(
    spool_path: Path,
    messages: Iterable[str],
    *,
    project: str = "proj",
    logstore: str = "store",
) -> int:
    """Append records through a real ``SpoolHandler(flusher="none")`` (a producer process)."""
    handler = SpoolHandler(
        project=project, logstore=logstore, spool_path=spool_path, flusher="none"
    )
    logger = logging.getLogger(f"daemon-test.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    n = 0
    try:
        for message in messages:
            logger.info("%s", message)
            n += 1
    finally:
        logger.removeHandler(handler)
        handler.close()
    return n


def delivered_messages(emu: Emulator, project: str = "proj", logstore: str = "store") -> Counter:
    """How many times each ``message`` value reached the emulator."""
    return Counter(dict(log.contents)["message"].decode() for log in emu.logs(project, logstore))


def spool_stats(path: Path):
    spool = Spool.open_readonly(path)
    try:
        return spool.stats()
    finally:
        spool.close()


@dataclass
class Rig:
    """What a daemon test works with: an emulator, a notify socket, a spool directory."""

    emu: Emulator
    notify: NotifyListener
    spool_dir: Path
    tmp: Path
    start: Callable[..., DaemonProcess]

    def config(self, name: str = "c.toml", **kwargs: object) -> Path:
        kwargs.setdefault("endpoint", self.emu.url)
        kwargs.setdefault("directories", [self.spool_dir])
        return toml_config(self.tmp / name, **kwargs)  # type: ignore[arg-type]

    def run(self, config: Path, **env: str) -> DaemonProcess:
        return self.start(["--config", str(config)], daemon_env(self.notify, **env))
