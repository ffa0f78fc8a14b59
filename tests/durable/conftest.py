"""Fixtures of the durable tests: one verifying emulator per test, on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from durable_support import AK_ID, AK_SECRET, close_all

from yai_spool.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A signature-verifying emulator (in-memory store) that stops at teardown."""
    with Emulator(EmulatorConfig(access_keys={AK_ID: AK_SECRET})) as emulator:
        yield emulator


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    """Where the test's spool lives (the directory is created 0700 by the spool)."""
    return tmp_path / "spool" / "app.spool"


@pytest.fixture(autouse=True)
def _cleanup() -> Iterator[None]:
    """Close handlers/flushers a failed test left running (close() is idempotent)."""
    yield
    close_all()
