"""Fixtures of the spool contract tests (``test_spool_contract*.py``).

``backend`` is parametrised over both backends (``contract_support.KINDS``): a test that takes
it, or ``spool``, runs once on a SQLite ``Spool`` and once on a ``MemorySpool``. ``durable`` and
``memory`` give one backend by name, for the documented differences. A module that defines
its own ``spool`` fixture (``test_spool_basic.py``) keeps it: pytest prefers the nearer one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from contract_support import KINDS, Backend, backend_for

from yai_spool.spool import SpoolBackend


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Spools of one kind (``sqlite``, ``memory``) sharing the test's fake clock."""
    yield from backend_for(request.param, tmp_path)


@pytest.fixture
def spool(backend: Backend) -> SpoolBackend:
    """A spool with the default bounds (large enough never to be reached)."""
    return backend.open()


@pytest.fixture
def durable(tmp_path: Path) -> Iterator[Backend]:
    yield from backend_for("sqlite", tmp_path)


@pytest.fixture
def memory(tmp_path: Path) -> Iterator[Backend]:
    yield from backend_for("memory", tmp_path)
