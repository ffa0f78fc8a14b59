"""The total deadline of a call, enforced on httpcore's socket operations, and :meth:`abort`.

Owns the network backends the native clients install under httpx: ``DeadlineBackend`` (sync,
abortable from another thread) and ``AsyncDeadlineBackend`` (anyio), side by side with their
streams, and :func:`install_deadline_backend`, the one place that reaches into httpx/httpcore
internals to put them there.

httpx's timeouts are per socket operation: a server that trickles one byte every
``read - 1`` seconds never trips them. A total deadline therefore has to reach every blocking
operation. The clients arm the call's monotonic deadline (:meth:`Exchange.deadline
<yai_spool.sls.exchange.Exchange.deadline>`) and these backends give each connect / read /
write / TLS handshake :func:`~yai_spool.sls.exchange.call_budget`, i.e. ``min(phase timeout,
time left)``, failing at once when nothing is left. httpcore does the I/O of a request in the
calling thread (sync) or task (async), so the deadline read here is the one set by that very
call; concurrent calls do not see each other's. What this cannot bound (documented, not
hidden): a blocking DNS lookup in the sync client (getaddrinfo has no timeout; the async
backend resolves under its own fail_after).
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import socket
import threading
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpcore
import httpx
from httpcore._backends.sync import SyncStream as _SyncStream  # see DeadlineBackend

from yai_spool.sls.exchange import call_budget

if TYPE_CHECKING:
    import ssl

__all__ = [
    "WRITE_PIECE",
    "AsyncDeadlineBackend",
    "AsyncDeadlineStream",
    "DeadlineBackend",
    "DeadlineStream",
    "install_deadline_backend",
]

# Largest piece of a request body handed to one socket write. Each piece gets the budget
# left at the moment it starts (see DeadlineStream.write), so the total deadline holds
# for multi-megabyte bodies too, not just for the first send().
WRITE_PIECE: Final = 64 * 1024

_ABORTED: Final = "request aborted: the client was aborted (shutdown deadline)"


class DeadlineStream(httpcore.NetworkStream):
    def __init__(
        self,
        stream: httpcore.NetworkStream,
        backend: DeadlineBackend | None = None,
        handle: socket.socket | None = None,
    ) -> None:
        self._stream = stream
        self._backend = backend
        self._handle = handle  # the backend's abort handle of this connection (see there)

    def _check(self, error: type[httpcore.NetworkError]) -> None:
        if self._backend is not None and self._backend.aborted:
            raise error(_ABORTED)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._check(httpcore.ReadError)
        data = self._stream.read(max_bytes, call_budget(timeout, httpcore.ReadTimeout))
        # An aborted socket reads as EOF; say why instead of "server disconnected".
        self._check(httpcore.ReadError)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # httpcore's sync write loops send() with one timeout for the whole buffer; split it
        # so the budget is re-read per piece and a large body cannot outlive the deadline.
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_PIECE):
            self._check(httpcore.WriteError)
            piece = bytes(view[start : start + WRITE_PIECE])
            self._stream.write(piece, call_budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            if self._backend is not None:
                self._backend.forget(self._handle)
                self._handle = None

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        self._check(httpcore.ConnectError)
        budget = call_budget(timeout, httpcore.ConnectTimeout)
        try:
            tls = self._stream.start_tls(ssl_context, server_hostname, budget)
        except BaseException:
            if self._backend is not None:  # httpcore closed the socket; drop our handle too
                self._backend.forget(self._handle)
                self._handle = None
            raise
        # The handle moves to the TLS stream: the plain one is never used (or closed) again.
        handle, self._handle = self._handle, None
        return DeadlineStream(tls, self._backend, handle)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, plus the total deadline and :meth:`abort`.

    ``abort()`` must end every blocking socket operation of the client *now*, from another
    thread: ``close()`` on a socket does not wake a thread blocked in ``recv`` on it (Linux
    keeps the file open until that call returns), but ``shutdown(SHUT_RDWR)`` does, and on a
    socket still in SYN_SENT it aborts the connect as well. So every TCP socket is created
    here, not in ``socket.create_connection``, and a ``dup()`` of it (the *handle*) is kept
    until its stream closes: the handle outlives the TLS wrap, which detaches the original
    socket object before the handshake, so a hung TLS handshake can be aborted too. The
    connect is started non-blocking under the lock that ``abort`` takes, so a socket is either
    refused before it connects or registered before ``abort`` looks: no window where a
    connect starts unseen. What cannot be aborted: the DNS lookup (``getaddrinfo``).
    """

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend
        self._lock = threading.Lock()
        self._handles: set[socket.socket] = set()
        self.aborted = False

    def abort(self) -> None:
        """Fail every socket operation in flight at once and refuse new ones (idempotent)."""
        with self._lock:
            self.aborted = True
            handles = list(self._handles)
        for handle in handles:
            with contextlib.suppress(OSError):
                handle.shutdown(socket.SHUT_RDWR)

    def forget(self, handle: socket.socket | None) -> None:
        if handle is None:
            return
        with self._lock:
            self._handles.discard(handle)
        handle.close()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        if self.aborted:
            raise httpcore.ConnectError(_ABORTED)
        budget = call_budget(timeout, httpcore.ConnectTimeout)
        # Mirrors httpcore's SyncBackend.connect_tcp (socket.create_connection: every address
        # in turn, the last error raised; TCP_NODELAY), with an abortable connect.
        source = None if local_address is None else (local_address, 0)
        error: OSError | None = None
        try:
            infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                handle = self._connect(sock, address, source, budget)
            except OSError as exc:
                sock.close()
                error = exc
                if self.aborted:
                    break
                continue
            try:
                for option in socket_options or ():
                    sock.setsockopt(*option)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                self.forget(handle)
                sock.close()
                raise httpcore.ConnectError(str(exc)) from exc
            return DeadlineStream(_SyncStream(sock), self, handle)
        if self.aborted:
            raise httpcore.ConnectError(_ABORTED) from error
        if isinstance(error, TimeoutError):
            raise httpcore.ConnectTimeout(str(error) or "connect timed out") from error
        raise httpcore.ConnectError(str(error or "getaddrinfo returned no address")) from error

    def _connect(
        self,
        sock: socket.socket,
        address: Any,
        source: tuple[str, int] | None,
        timeout: float | None,
    ) -> socket.socket:
        """Connect ``sock`` (blocking, bounded by ``timeout``); returns its abort handle."""
        if source is not None:
            sock.bind(source)
        sock.setblocking(False)
        with self._lock:
            if self.aborted:
                raise ConnectionAbortedError(_ABORTED)
            code = sock.connect_ex(address)  # non-blocking: returns at once
            handle = sock.dup()
            self._handles.add(handle)
        try:
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, os.strerror(code))
            if code:
                with selectors.DefaultSelector() as selector:
                    selector.register(sock, selectors.EVENT_WRITE)
                    if not selector.select(timeout) and not self.aborted:
                        raise TimeoutError("connect timed out")
                if self.aborted:
                    raise ConnectionAbortedError(_ABORTED)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code))
            sock.setblocking(True)  # httpcore sets a timeout per operation
        except BaseException:
            self.forget(handle)
            raise
        return handle

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        budget = call_budget(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._backend.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, call_budget(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # The anyio backend bounds the whole send with one fail_after, so no splitting needed.
        await self._stream.write(buffer, call_budget(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        budget = call_budget(timeout, httpcore.ConnectTimeout)
        stream = await self._stream.start_tls(ssl_context, server_hostname, budget)
        return AsyncDeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        budget = call_budget(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_tcp(host, port, budget, local_address, socket_options)
        return AsyncDeadlineStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        budget = call_budget(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_unix_socket(path, budget, socket_options)
        return AsyncDeadlineStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


_B = TypeVar("_B", DeadlineBackend, AsyncDeadlineBackend)


def install_deadline_backend(
    transport: httpx.HTTPTransport | httpx.AsyncHTTPTransport,
    wrapper: type[_B],
) -> _B:
    """Wrap the network backend of an httpx transport's httpcore pool.

    httpx exposes no public hook for the backend, so this reaches into ``transport._pool``
    (httpx) and ``pool._network_backend`` (httpcore). Both are pinned by pyproject.toml
    (httpx < 0.29) and checked here and in tests/client, so an upgrade that moves them fails
    loudly at construction instead of silently dropping the total deadline.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:  # pragma: no cover - only after an incompatible httpx/httpcore upgrade
        raise RuntimeError(
            "cannot install the total-deadline backend: httpx/httpcore internals changed "
            f"(httpx {httpx.__version__}, httpcore {httpcore.__version__})"
        )
    installed = wrapper(backend)
    pool._network_backend = installed  # type: ignore[union-attr]
    return installed
