"""Fixtures for the emulator tests: a fresh emulator per test on 127.0.0.1:0.

Each test gets its own emulator (start/stop take milliseconds), backed by a real SQLite
file in ``tmp_path``, so faults and stored data never leak between tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_support import KEY_ID, SECRET, TMP_KEY_ID, TMP_SECRET, TOKEN

from yai_spool.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    """Verifying emulator with one permanent key and one STS-only key."""
    config = EmulatorConfig(
        access_keys={KEY_ID: SECRET, TMP_KEY_ID: TMP_SECRET},
        sts_tokens={TOKEN: TMP_KEY_ID},
        db_path=str(tmp_path / "emu.sqlite3"),
    )
    with Emulator(config) as emulator:
        yield emulator


@pytest.fixture
def open_emu(tmp_path: Path) -> Iterator[Emulator]:
    """Emulator with signature verification off, for body and limit checks."""
    config = EmulatorConfig(verify_signatures=False, db_path=str(tmp_path / "open.sqlite3"))
    with Emulator(config) as emulator:
        yield emulator
