"""The yai-spool pytest plugin: ``sls_emulator`` and ``sls_handler`` fixtures for your tests.

pytest loads it by itself when yai-spool is installed (entry point ``pytest11`` named
``yai_spool``); disable it with ``-p no:yai_spool``. Fixtures (function scope):

- ``sls_emulator``: a running :class:`~yai_spool.testing.SLSEmulator` on 127.0.0.1 (a free
  port) with made-up credentials; handlers built from it are closed, then the emulator is
  stopped, after the test.
- ``sls_handler``: a durable ``SpoolHandler`` wired to ``sls_emulator`` (its own spool file,
  ``linger=0``, fast retries). Attach it to the logger under test.
- ``sls_handler_factory``: ``sls_handler_factory(mode="memory", topic="x", ...)`` builds
  more handlers (any ``yai_spool.make_handler`` mode and option), all closed after the test.

Invariants: importing this module imports only pytest and :mod:`yai_spool.testing` (no
emulator, no handler, no HTTP library) because pytest imports it in every session; fixture
names all start with ``sls_`` so they do not shadow a project's own fixtures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from yai_spool.testing import HandlerFactory, SLSEmulator

__all__ = ["sls_emulator", "sls_handler", "sls_handler_factory"]


@pytest.fixture
def sls_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SLSEmulator]:
    """A running local SLS emulator with credentials; stopped after the test."""
    spools: Path = tmp_path_factory.mktemp("yai-spool")
    with SLSEmulator.running(spool_dir=spools) as sls:
        yield sls


@pytest.fixture
def sls_handler_factory(sls_emulator: SLSEmulator) -> HandlerFactory:
    """Build handlers shipping to ``sls_emulator``: ``sls_handler_factory(mode=..., **options)``."""
    return sls_emulator.handler


@pytest.fixture
def sls_handler(sls_emulator: SLSEmulator) -> logging.Handler:
    """A ``SpoolHandler`` shipping to ``sls_emulator`` (closed, drained, after the test)."""
    return sls_emulator.handler()
