"""``PutLogsClient.abort()``: a call blocked on the network ends at once, in every phase.

Real sockets on 127.0.0.1, no mocks: a listener that accepts and never answers (blocked in
the response read), one that never completes the TCP handshake (blocked in connect: its
accept queue is full, so Linux drops the SYNs), and one that accepts but never speaks TLS
(blocked in the TLS handshake). Each call runs in a thread; the test aborts from another
thread and waits for the call to end with a generous deadline (a hang fails the test, a
fast machine passes no faster).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from client_support import KEY_ID, LOGSTORE, PROJECT, SECRET

from yai_spool.handlers.core import LazySender
from yai_spool.sls.client import ClientTimeouts, PutLogsClient
from yai_spool.sls.errors import ConnectError, ConnectionLost, TransportError

DEADLINE = 30.0
#: Far longer than the test deadline: only abort() can end the call in time.
SLOW = ClientTimeouts(connect=120, read=120, write=120, pool=120, total=120)


@contextlib.contextmanager
def silent_listener() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never sends a byte."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


@contextlib.contextmanager
def syn_black_hole() -> Iterator[int]:
    """A port whose accept queue is full: new connects stay in SYN_SENT."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        # Fill the accept queue (never accepted); then the kernel drops further SYNs.
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        probe = socket.socket()
        probe.settimeout(0.5)
        try:
            probe.connect(("127.0.0.1", port))
        except TimeoutError:
            pass  # as wanted: the connect hangs
        else:  # pragma: no cover - a kernel that accepts beyond the backlog
            pytest.skip("this kernel completes connects beyond a full accept queue")
        finally:
            probe.close()
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def _call_in_thread(client: PutLogsClient) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(client.put_raw(PROJECT, LOGSTORE, b""))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, outcome


def _wait_until_on_the_wire(accepted: list[socket.socket]) -> None:
    """Poll (with the test deadline) until the silent listener accepted the connection."""
    waiter = threading.Event()
    for _ in range(int(DEADLINE / 0.05)):
        if accepted:
            return
        waiter.wait(0.05)
    raise AssertionError("the request never reached the listener")


def _abort_blocked_call(
    client: PutLogsClient, settle: float, accepted: list[socket.socket] | None = None
) -> Any:
    """Start a call, check it is blocked, abort; return how the call ended (client closed).

    ``accepted``: wait until the silent listener has the connection before settling.
    """
    thread, outcome = _call_in_thread(client)
    if accepted is not None:
        _wait_until_on_the_wire(accepted)
    thread.join(settle)
    assert thread.is_alive()  # really blocked: nothing answers
    client.abort()
    thread.join(DEADLINE)
    assert not thread.is_alive()
    client.close()
    return outcome[0]


def _client(url: str) -> PutLogsClient:
    return PutLogsClient(
        url, access_key_id=KEY_ID, access_key_secret=SECRET, timeouts=SLOW, verify=False
    )


def test_abort_ends_a_call_waiting_for_a_response() -> None:
    with silent_listener() as (port, accepted):
        ended = _abort_blocked_call(_client(f"http://127.0.0.1:{port}"), 0.2, accepted)
        assert isinstance(ended, ConnectionLost), ended
        assert "aborted" in str(ended)


def test_abort_ends_a_connect_that_never_completes() -> None:
    with syn_black_hole() as port:
        ended = _abort_blocked_call(_client(f"http://127.0.0.1:{port}"), 0.3)
        assert isinstance(ended, ConnectError), ended


def test_abort_ends_a_tls_handshake_that_never_completes() -> None:
    with silent_listener() as (port, accepted):
        # Blocked inside the handshake: the server never answers ClientHello.
        ended = _abort_blocked_call(_client(f"https://127.0.0.1:{port}"), 0.2, accepted)
        assert isinstance(ended, TransportError), ended


def test_calls_after_abort_fail_at_once_without_touching_the_network() -> None:
    with silent_listener() as (port, accepted):
        client = _client(f"http://127.0.0.1:{port}")
        client.abort()
        with pytest.raises(ConnectError, match="aborted"):
            client.put_raw(PROJECT, LOGSTORE, b"")
        assert accepted == []
        client.close()


def test_a_lazy_sender_passes_abort_to_the_client_it_built() -> None:
    """The handlers' ``LazySender`` builds the client on the first send; abort reaches it."""
    with silent_listener() as (port, accepted):
        lazy = LazySender(lambda: _client(f"http://127.0.0.1:{port}"))
        thread, outcome = _call_in_thread(lazy)  # type: ignore[arg-type]
        _wait_until_on_the_wire(accepted)
        lazy.abort()
        thread.join(DEADLINE)
        assert not thread.is_alive()
        # Aborted in connect or in the response read (the listener accepts first): either way
        # the call ended now, not after the client's 120 s timeouts.
        assert isinstance(outcome[0], (ConnectError, ConnectionLost)), outcome
        assert "aborted" in str(outcome[0])
        lazy.close()


def test_an_abort_before_the_first_send_is_kept_by_a_lazy_sender() -> None:
    """abort() then the first send: the client is built aborted and never dials out."""
    with silent_listener() as (port, accepted):
        lazy = LazySender(lambda: _client(f"http://127.0.0.1:{port}"))
        lazy.abort()
        thread, outcome = _call_in_thread(lazy)  # type: ignore[arg-type]
        thread.join(DEADLINE)
        assert not thread.is_alive()
        assert isinstance(outcome[0], ConnectError), outcome
        assert accepted == []
        lazy.close()
