"""Fixtures for the CLI tests: a verifying emulator per test and a private spool directory.

The emulator knows the sentinel key (with its STS token) from ``cli_support``, binds
127.0.0.1 on a free port and stops at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import KEY_ID, SECRET, TOKEN

from yai_spool.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    config = EmulatorConfig(
        access_keys={KEY_ID: SECRET},
        sts_tokens={TOKEN: KEY_ID},
        db_path=str(tmp_path / "emulator.sqlite3"),
    )
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    """A 0700 directory for spools (what the spool itself would create)."""
    path = tmp_path / "spools"
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path
