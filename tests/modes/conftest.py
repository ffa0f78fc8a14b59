"""Fixtures of the delivery-mode tests: one verifying emulator per test, on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from modes_support import AK_ID, AK_SECRET

from yai_spool.emulator import Emulator, EmulatorConfig


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """A signature-verifying emulator (in-memory store) that stops at teardown."""
    with Emulator(EmulatorConfig(access_keys={AK_ID: AK_SECRET})) as emulator:
        yield emulator
