"""Project-wide pytest fixtures.

Owns: logging-state hygiene (every test gets the root logger back as it found it) and
``exit_stack`` (what factory fixtures in several folders make is closed at teardown). Helpers
that tests import (not fixtures) are in shared_support.py. Emulators bind 127.0.0.1 on a free
port and stop at teardown, so no test leaves a server behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

ACCESS_KEY_ID = "LTAI5tTestKeyId"
ACCESS_KEY_SECRET = "TestSecret123-do-not-leak"
STS_TOKEN = "STS.test-token-do-not-leak"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Give every test the logging configuration it found, whatever it attached."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def exit_stack() -> Iterator[ExitStack]:
    """An ExitStack unwound at teardown: factory fixtures register what they make to close it.

    Unwinding runs every callback (last registered first) even when one of them raises.
    """
    with ExitStack() as stack:
        yield stack
