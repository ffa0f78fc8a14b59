"""The total deadline holds where per-operation timeouts cannot: a server that answers one byte
at a time (each read well inside the read timeout), and a server that stops reading the body.

These need misbehaviour the emulator does not script, so a tiny socket server on 127.0.0.1
plays the peer. It paces its bytes with ``Event.wait`` (behaviour, not synchronisation).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from client_support import KEY_ID, LOGSTORE, PROJECT, SECRET

from yai_spool.sls.client import AsyncPutLogsClient, ClientTimeouts, PutLogsClient
from yai_spool.sls.errors import RequestTimeout
from yai_spool.sls.model import Log, LogGroup

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nx-log-requestid: 5B0A6B60BB6EE39764D458B5\r\nContent-Length: 0\r\n\r\n"
)
GENEROUS = 5.0


class MisbehavingServer:
    """Accepts connections on 127.0.0.1 and runs `behave(conn, stop)` for each in a thread."""

    def __init__(self, behave: Callable[[socket.socket, threading.Event], None]) -> None:
        self._behave = behave
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self._behave(conn, self._stop)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)


def read_request(conn: socket.socket) -> None:
    """Read one request's headers and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def drip(interval: float) -> Callable[[socket.socket, threading.Event], None]:
    def behave(conn: socket.socket, stop: threading.Event) -> None:
        read_request(conn)
        for i in range(len(RESPONSE)):
            if stop.wait(interval):
                return
            conn.sendall(RESPONSE[i : i + 1])

    return behave


def slow_reader(conn: socket.socket, stop: threading.Event) -> None:
    # Take 64 KiB every 20 ms and never answer: each client write makes progress well within
    # its write timeout, but the 64 MiB body would need ~20 s.
    while not stop.wait(0.02):
        if not conn.recv(65536):
            return


@pytest.fixture
def server_factory() -> Iterator[Callable[..., MisbehavingServer]]:
    made: list[MisbehavingServer] = []

    def make(behave: Callable[[socket.socket, threading.Event], None]) -> MisbehavingServer:
        server = MisbehavingServer(behave)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def put(flavour: str, port: int, group: LogGroup, timeouts: ClientTimeouts, **kw: Any) -> Any:
    url = f"http://127.0.0.1:{port}"
    creds = {"access_key_id": KEY_ID, "access_key_secret": SECRET, "timeouts": timeouts, **kw}
    if flavour == "sync":
        with PutLogsClient(url, **creds) as client:
            return client.put_logs(PROJECT, LOGSTORE, group)

    async def run() -> Any:
        async with AsyncPutLogsClient(url, **creds) as client:
            return await client.put_logs(PROJECT, LOGSTORE, group)

    return asyncio.run(run())


SMALL = LogGroup(logs=(Log(time=1_700_000_000, contents=(("msg", "x"),)),))
FLAVOURS = ["sync", "async"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dripping_response_is_cut_by_the_total_deadline(
    server_factory: Callable[..., MisbehavingServer], flavour: str
) -> None:
    # Each byte arrives 20 ms after the previous one: the 2 s read timeout never fires, and
    # the whole answer takes ~1.5 s. Only the 0.3 s total can stop it.
    server = server_factory(drip(0.02))
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        put(flavour, server.port, SMALL, ClientTimeouts(read=2.0, total=0.3))
    assert time.monotonic() - started < 0.3 + GENEROUS


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_dripping_response_completes_within_a_large_budget(
    server_factory: Callable[..., MisbehavingServer], flavour: str
) -> None:
    """Control for the test above: the same server does answer, given the time."""
    server = server_factory(drip(0.002))
    result = put(flavour, server.port, SMALL, ClientTimeouts(read=2.0, total=30.0))
    assert result.status == 200


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_slowly_read_body_is_cut_by_the_total_deadline(
    server_factory: Callable[..., MisbehavingServer], flavour: str
) -> None:
    # 64 MiB sent uncompressed to a peer that reads slowly: far more than loopback socket
    # buffers hold, so writes wait on the reader and only the total deadline is short enough.
    value = bytes(range(256)) * 4096  # 1 MiB
    group = LogGroup(logs=tuple(Log(time=1, contents=(("v", value),)) for _ in range(64)))
    server = server_factory(slow_reader)
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        put(flavour, server.port, group, ClientTimeouts(write=30.0, total=0.5), compression="none")
    assert time.monotonic() - started < 0.5 + GENEROUS
