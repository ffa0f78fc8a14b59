"""Fixtures for the PutLogs client tests.

Owns: the fake credentials every client test uses and `mock_client` factories that route a
real PutLogsClient / AsyncPutLogsClient through ``httpx.MockTransport`` for pure-logic tests
(status mapping, exception translation, headers). Everything that needs real sockets uses the
emulator (test_client_emulator.py) or a local socket server (test_client_deadline.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from client_support import KEY_ID, SECRET, TMP_KEY_ID, TMP_SECRET, TOKEN
from shared_support import sts_emulator

from yai_spool.emulator import Emulator
from yai_spool.sls.client import AsyncPutLogsClient, PutLogsClient


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One emulator per test module on 127.0.0.1:<free port>, verifying signatures.

    Tests isolate themselves by logstore name; `_reset_emu` clears faults between tests.
    """
    with sts_emulator((KEY_ID, SECRET), (TMP_KEY_ID, TMP_SECRET), TOKEN) as emulator:
        yield emulator


@pytest.fixture
def fresh_emu(emu: Emulator) -> Iterator[Emulator]:
    """The module emulator, up, with no faults before and after the test."""
    emu.faults.clear()
    if not emu.is_up:
        emu.faults.up()
    yield emu
    emu.faults.clear()
    emu.faults.release()
    if not emu.is_up:
        emu.faults.up()


Handler = Callable[[httpx.Request], httpx.Response]


def with_mock_transport(client: Any, handler: Handler) -> Any:
    """Swap a client's httpx client for one on ``httpx.MockTransport(handler)``.

    Tests only: the production transport is closed first so nothing leaks.
    """
    if isinstance(client, PutLogsClient):
        client._http.close()
        client._http = httpx.Client(transport=httpx.MockTransport(handler))
    else:
        # AsyncClient.aclose needs a loop; the unused pool holds no connections yet, so
        # closing the transport's pool synchronously is not needed for cleanliness.
        client._http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return client


@pytest.fixture
def sync_mock(exit_stack: ExitStack) -> Callable[..., PutLogsClient]:
    """Factory: ``sync_mock(handler, **client_kwargs)`` -> PutLogsClient on MockTransport.

    Every client it makes is closed at teardown.
    """

    def make(handler: Handler, **kwargs: Any) -> PutLogsClient:
        kwargs.setdefault("access_key_id", KEY_ID)
        kwargs.setdefault("access_key_secret", SECRET)
        client = with_mock_transport(PutLogsClient("http://127.0.0.1:9", **kwargs), handler)
        exit_stack.callback(client.close)
        return client

    return make


@pytest.fixture
def async_mock() -> Callable[..., AsyncPutLogsClient]:
    """Factory: ``async_mock(handler, **client_kwargs)`` -> AsyncPutLogsClient on MockTransport.

    The test closes it (``async with`` or ``await client.aclose()``) inside its event loop.
    """

    def make(handler: Handler, **kwargs: Any) -> AsyncPutLogsClient:
        kwargs.setdefault("access_key_id", KEY_ID)
        kwargs.setdefault("access_key_secret", SECRET)
        return with_mock_transport(AsyncPutLogsClient("http://127.0.0.1:9", **kwargs), handler)

    return make


@pytest.fixture(params=["sync", "async"])
def mock_client(
    request: pytest.FixtureRequest,
    sync_mock: Callable[..., PutLogsClient],
    async_mock: Callable[..., AsyncPutLogsClient],
) -> Callable[..., Any]:
    """``sync_mock`` and then ``async_mock``: a test that holds for both twins."""
    return sync_mock if request.param == "sync" else async_mock
