"""Fixtures of the daemon tests: an emulator, a notify socket, a spool directory, daemons.

Every daemon started through ``start_daemon`` is stopped at teardown (SIGTERM, then SIGKILL),
and the emulator binds 127.0.0.1 on a free port and stops with the test.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_support import ACCESS_KEY_ID, ACCESS_KEY_SECRET, DaemonProcess, NotifyListener, Rig

from yai_spool.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(EmulatorConfig(access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET})) as emulator:
        yield emulator


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="ysd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def notify(short_dir: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(short_dir)
    yield listener
    listener.close()


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    path = tmp_path / "spools"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []

    def start(args: list[str], env: dict[str, str], **kwargs: object) -> DaemonProcess:
        process = DaemonProcess(args, env, tmp_path, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def rig(
    emu: Emulator,
    notify: NotifyListener,
    spool_dir: Path,
    tmp_path: Path,
    start_daemon: Callable[..., DaemonProcess],
) -> Rig:
    return Rig(emu, notify, spool_dir, tmp_path, start_daemon)
