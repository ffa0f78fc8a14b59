"""A small threaded HTTP/1.1 server built on sockets, with the controls a fault injector needs.

Owns: listening, accepting, parsing HTTP/1.1 requests off keep-alive connections, writing
responses, and the lifecycle operations the emulator exposes: ``start``, ``stop``, ``down``
(stop listening and drop every connection, keeping the port number) and ``up`` (listen on
the same port again). It knows nothing about SLS; a handler callable turns each
:class:`HttpRequest` into an :class:`HttpResponse`, or into ``None`` to drop the connection
without answering.

Why not ``http.server``: it parses headers with ``email.parser`` (slow), cannot close idle
keep-alive connections on shutdown, and has no way to go down and come back on the same
port; the emulator needs all three.

Invariants:
- Binds only the configured host; port 0 picks a free port once, and ``up()`` after
  ``down()`` reuses that exact port (``SO_REUSEADDR``).
- Every thread is a daemon thread. ``stop()`` returns promptly: it closes the listener,
  shuts down every open connection (waking threads blocked in ``recv``) and sets
  ``stopping``, which handlers that wait (hang, latency) must watch.
- Request targets may be origin-form (``/path?q``) or absolute-form
  (``http://host/path?q``, what clients send to an HTTP proxy); ``HttpRequest.host`` is the
  absolute-form authority if present, else the ``Host`` header.
- Bodies are read exactly by ``Content-Length`` (or chunked transfer coding); a request
  without either has an empty body.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from io import BufferedReader
from typing import cast
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Connection", "HttpRequest", "HttpResponse", "HttpServer", "ServerSettings"]

_REASONS = {s.value: s.phrase for s in HTTPStatus}
_MAX_HEADERS = 200
# Bodies beyond max_body_bytes are read and discarded (not buffered) up to this deadline, so
# the client sees the error response instead of a reset caused by unread data.
_DISCARD_DEADLINE_S = 10.0


class _BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.1 request we can answer in-protocol."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class HttpRequest:
    """One parsed request. ``headers`` has lower-cased names (last value wins)."""

    method: str
    target: str
    path: str
    raw_query: str
    query: dict[str, str]
    version: str
    headers: dict[str, str]
    host: str
    body: bytes
    body_too_large: bool = False
    peer: str = ""  # "ip:port" of the client end of the TCP connection


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False
    # Run after the response is written (e.g. "go down" must answer before it closes the
    # very connection it came on).
    after: Callable[[], None] | None = None


class Connection:
    """What a handler may ask about the connection its request came on."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self._sock = sock
        self.stopping = stopping
        self.closed = threading.Event()

    def client_gone(self) -> bool:
        """True when the peer has closed its side (EOF or reset) or the server dropped it.

        Used by hang faults: a held request ends when the client gives up. A pipelined next
        request would also make the socket readable; that is reported as "not gone".
        """
        if self.closed.is_set():
            return True
        try:
            ready = selectors.DefaultSelector()
            with ready:
                ready.register(self._sock, selectors.EVENT_READ)
                if not ready.select(0):
                    return False
            return self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True


Handler = Callable[[HttpRequest, Connection], HttpResponse | None]


class _Listener:
    """One listening socket and its accept thread (one per up-period)."""

    def __init__(self, server: HttpServer, sock: socket.socket) -> None:
        self._server = server
        self.sock = sock
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(
            target=self._run, name=f"emulator-accept-{sock.getsockname()[1]}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while True:
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        conn, _addr = self.sock.accept()
                    except OSError:
                        continue
                    self._server._spawn(conn)
        finally:
            sel.close()
            self.sock.close()
            self._wake_r.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        self._wake_w.close()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Where an :class:`HttpServer` listens and how much it accepts.

    ``port`` 0 picks a free port (read the bound one back from ``HttpServer.port``);
    ``keepalive_timeout`` None keeps an idle keep-alive connection until stop.
    """

    host: str = "127.0.0.1"
    port: int = 0
    keepalive_timeout: float | None = None
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024
    server_name: str = "yai-spool-emulator"


class HttpServer:
    """Threaded HTTP/1.1 server; see the module docstring for the contract."""

    def __init__(self, handler: Handler, settings: ServerSettings | None = None) -> None:
        self._handler = handler
        self.settings = ServerSettings() if settings is None else settings
        self._port = self.settings.port  # the bound port once started
        self._lock = threading.Lock()
        # Serialises down()/up()/start(); never taken by connection threads, so down() may
        # join the accept thread while holding it.
        self._lifecycle = threading.Lock()
        self._listener: _Listener | None = None
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self.stopping = threading.Event()
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("server not started: the port is chosen at start()")
        return self._port

    @property
    def is_up(self) -> bool:
        return self._listener is not None

    def start(self) -> None:
        with self._lifecycle, self._lock:
            if self._started:
                raise RuntimeError("server already started")
            self._started = True
            self._listen()

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # SO_REUSEADDR: up() after down() must rebind the same port even while closed
            # connections linger in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.settings.host, self._port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._listener = _Listener(self, sock)

    def down(self) -> None:
        """Stop listening (new connections are refused) and drop every open connection.

        When this returns the listening socket is closed, so ``is_up`` is False only once
        connections are really refused.
        """
        with self._lifecycle:
            listener = self._listener
            if listener is not None:
                listener.close()  # joins the accept thread: no connection is spawned after
            with self._lock:
                self._listener = None
                conns = list(self._conns)
            for conn in conns:
                _shutdown(conn)

    def up(self) -> None:
        """Listen again on the same port after :meth:`down`. No-op if already up."""
        with self._lifecycle, self._lock:
            if self.stopping.is_set():
                raise RuntimeError("server stopped")
            if self._listener is None:
                self._listen()

    def stop(self, timeout: float = 2.0) -> None:
        """Close everything and wait (bounded) for connection threads to finish."""
        self.stopping.set()
        self.down()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- connections -------------------------------------------------------------------

    def _spawn(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(
            target=self._serve, args=(conn,), name="emulator-conn", daemon=True
        )
        with self._lock:
            if self.stopping.is_set():
                conn.close()
                return
            self._conns.add(conn)
            self._threads.add(thread)
        thread.start()

    def _serve(self, sock: socket.socket) -> None:
        ctx = Connection(sock, self.stopping)
        # A buffered binary reader (makefile's overloads type it as IOBase for any mode).
        reader = cast(BufferedReader, sock.makefile("rb", buffering=256 * 1024))
        try:
            host, port = sock.getpeername()[:2]
            peer = f"{host}:{port}"
            sock.settimeout(self.settings.keepalive_timeout)
            while not self.stopping.is_set():
                try:
                    request = self._read_request(reader, sock)
                except _BadRequest as exc:
                    self._write(sock, _plain(exc.status, str(exc)), close=True)
                    return
                if request is None:
                    return
                request.peer = peer
                try:
                    response = self._handler(request, ctx)
                except Exception as exc:  # a handler bug must not kill the server silently
                    response = _plain(500, f"emulator handler error: {type(exc).__name__}")
                    response.close = True
                if response is None:  # the handler asked to drop the connection unanswered
                    return
                close = (
                    response.close
                    or request.body_too_large
                    or _wants_close(request.version, request.headers.get("connection", ""))
                )
                self._write(sock, response, close=close)
                if response.after is not None:
                    response.after()
                if close:
                    return
        except (OSError, ValueError):
            # Peer reset, timeout on an idle keep-alive connection, or stop()/down() shut
            # the socket under us: all end this connection and nothing else.
            return
        finally:
            ctx.closed.set()
            with contextlib.suppress(OSError, ValueError):
                reader.close()
            sock.close()
            with self._lock:
                self._conns.discard(sock)
                self._threads.discard(threading.current_thread())

    def _read_request(self, reader: BufferedReader, sock: socket.socket) -> HttpRequest | None:
        limit = self.settings.max_header_bytes
        line = reader.readline(limit + 1)
        while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: ignore empty lines before a request
            line = reader.readline(limit + 1)
        if not line:
            return None
        if len(line) > limit or not line.endswith(b"\n"):
            raise _BadRequest(414, "request line too long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "malformed request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        used = len(line)
        while True:
            hline = reader.readline(limit + 1)
            used += len(hline)
            if used > limit or len(headers) > _MAX_HEADERS:
                raise _BadRequest(431, "request headers too large")
            if not hline:
                return None
            if hline in (b"\r\n", b"\n"):
                break
            name, sep, value = hline.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest(400, "malformed header line")
            headers[name.lower()] = value.strip()

        host = headers.get("host", "")
        if target.startswith(("http://", "https://")):
            split = urlsplit(target)
            host = split.netloc or host
            path, raw_query = split.path or "/", split.query
        else:
            path, _, raw_query = target.partition("?")
        query = dict(parse_qsl(raw_query, keep_blank_values=True))

        request = HttpRequest(
            method=method,
            target=target,
            path=path,
            raw_query=raw_query,
            query=query,
            version=version,
            headers=headers,
            host=host,
            body=b"",
        )
        if headers.get("expect", "").lower() == "100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            request.body = self._read_chunked(reader)
            return request
        raw_length = headers.get("content-length")
        if raw_length is None:
            return request
        if not raw_length.isdigit():
            raise _BadRequest(400, "invalid Content-Length")
        length = int(raw_length)
        if length > self.settings.max_body_bytes:
            _discard(reader, sock, length)
            request.body_too_large = True
            return request
        body = reader.read(length)
        if len(body) != length:
            return None  # the client went away mid-body; nothing to answer
        request.body = body
        return request

    def _read_chunked(self, reader: BufferedReader) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = reader.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, "malformed chunk size") from None
            if size == 0:
                while reader.readline(self.settings.max_header_bytes) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are ignored
                return b"".join(chunks)
            total += size
            if total > self.settings.max_body_bytes:
                raise _BadRequest(413, "chunked body too large")
            chunk = reader.read(size)
            if len(chunk) != size:
                raise _BadRequest(400, "truncated chunk")
            chunks.append(chunk)
            reader.readline(8)  # the CRLF after each chunk

    def _write(self, sock: socket.socket, response: HttpResponse, *, close: bool) -> None:
        status = response.status
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n",
            f"Server: {self.settings.server_name}\r\n",
            f"Date: {_http_date()}\r\n",
            f"Content-Length: {len(response.body)}\r\n",
            "Connection: close\r\n" if close else "Connection: keep-alive\r\n",
        ]
        head.extend(f"{name}: {value}\r\n" for name, value in response.headers)
        head.append("\r\n")
        sock.sendall("".join(head).encode("latin-1") + response.body)


def _wants_close(version: str, connection: str) -> bool:
    tokens = {t.strip().lower() for t in connection.split(",")}
    if version == "HTTP/1.0":
        return "keep-alive" not in tokens
    return "close" in tokens


def _plain(status: int, message: str) -> HttpResponse:
    return HttpResponse(
        status,
        [("Content-Type", "text/plain; charset=utf-8")],
        message.encode() + b"\n",
        close=True,
    )


def _shutdown(conn: socket.socket) -> None:
    # shutdown() (not close()) wakes a thread blocked in recv on this socket; the owning
    # thread then closes it.
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def _discard(reader: BufferedReader, sock: socket.socket, length: int) -> None:
    deadline = time.monotonic() + _DISCARD_DEADLINE_S
    remaining = length
    while remaining > 0 and time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = reader.read1(min(remaining, 256 * 1024))
        if not chunk:
            break
        remaining -= len(chunk)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    # formatdate() costs a few microseconds; the Date header only changes once a second.
    global _date_cache  # noqa: PLW0603 - a one-entry cache; races only recompute it
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]
