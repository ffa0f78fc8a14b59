"""Native PutLogs clients: one HTTP exchange per call, nothing more.

Owns: :class:`PutLogsClient` (httpx, threads), :class:`AsyncPutLogsClient` (httpx, asyncio or
trio through anyio), and :class:`SdkPutLogsClient` (the official ``aliyun-log-python-sdk``
behind the same interface, used as a baseline and a migration path). Everything about the
*wire* (URL, headers, body encoding, compression, signatures, error bodies) comes from the
pure core: :func:`yai_spool.sls.request.build_put_logs_request` and
:func:`yai_spool.sls.errors.parse_error_response`. This module only moves bytes and translates
failures.

Invariants:

- **No retries, anywhere.** httpx transports are built with ``retries=0``; redirects are not
  followed; a failed call raises. The one retry policy lives in the flusher
  (:mod:`yai_spool.shipping.retry`), which needs to see every failure to classify it, back off with
  jitter and keep the data in the spool. (The SDK adapter is the documented exception: the
  SDK loops internally unless ``sdk_retries=False``.)
- **Success is status 200 exactly.** Anything else is an :class:`~yai_spool.sls.errors.SLSError`;
  failures below HTTP are a :class:`~yai_spool.sls.errors.TransportError` subclass raised
  ``from`` the httpx exception.
- **Every call signs afresh.** Credentials are asked of the provider and the request is
  signed with the current date on every call, so an STS refresh or a long outage never sends
  a stale signature (SLS rejects dates more than 15 minutes off).
- **Bounded time.** Each call has explicit connect/read/write/pool timeouts *and* a total
  deadline (:class:`ClientTimeouts`). The total is enforced below httpx, on the socket
  operations themselves (see ``_DeadlineBackend``), identically for both twins.
- **No secrets leak.** ``repr``/``str`` of clients and of the exceptions they raise never hold
  the access key secret or the STS token; the proxy's password is masked too.
- **The twins are twins.** ``_ClientBase`` holds configuration, request preparation, the
  timeout arithmetic and response/exception translation; :class:`PutLogsClient` and
  :class:`AsyncPutLogsClient` differ only in ``def``/``async def``, ``send``/``await send``
  and ``close``/``aclose``, so a reviewer can diff them line by line.

Exception mapping (httpx → ours, all raised ``from`` the original):

=====================================  =============================================
``httpx.ConnectError``, ``ProxyError``  :class:`~yai_spool.sls.errors.ConnectError`
``httpx.TimeoutException`` (connect,    :class:`~yai_spool.sls.errors.RequestTimeout`
read, write, pool, total deadline)
``httpx.ReadError``, ``WriteError``,    :class:`~yai_spool.sls.errors.ConnectionLost`
``RemoteProtocolError``, ``CloseError``
any other ``httpx.TransportError``      :class:`~yai_spool.sls.errors.TransportError`
HTTP status != 200                      :class:`~yai_spool.sls.errors.SLSError`
=====================================  =============================================

:class:`SdkPutLogsClient` maps the SDK's ``LogException`` onto the same classes (see its
docstring), so the flusher classifies every client's failures with one function.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import selectors
import socket
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx
from httpcore._backends.sync import SyncStream as _SyncStream  # see _DeadlineBackend

from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import Credentials, CredentialsProvider, resolve_credentials
from yai_spool.sls.errors import (
    ConfigError,
    ConnectError,
    ConnectionLost,
    EncodeError,
    RequestTimeout,
    ShipError,
    TransportError,
    YaiSpoolError,
    parse_error_response,
)
from yai_spool.sls.request import (
    Destination,
    Endpoint,
    PreparedRequest,
    build_put_logs_request,
    build_put_logs_request_from_raw,
    region_from_host,
)
from yai_spool.sls.signing import (
    DEFAULT_SIGNATURE_METHOD,
    SignatureMethod,
    validate_signature_method,
)

if TYPE_CHECKING:
    import ssl

    from yai_spool.sls.model import LogGroup

__all__ = [
    "AsyncPutLogsClient",
    "ClientTimeouts",
    "PutLogsClient",
    "PutLogsResult",
    "SdkPutLogsClient",
]

SignatureVersion = Literal["v1", "v4"]

# How long an idle keep-alive connection is kept. Flushers send every few seconds, so 30 s
# keeps one warm connection between flushes; the pool still checks a connection is not
# half-closed (``is_readable``) before reusing it, so a server-side idle close is harmless.
_KEEPALIVE_EXPIRY = 30.0

# Largest piece of a request body handed to one socket write. Each piece gets the budget
# left at the moment it starts (see _DeadlineStream.write), so the total deadline holds
# for multi-megabyte bodies too, not just for the first send().
_WRITE_PIECE = 64 * 1024


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    """Time limits of one PutLogs call, in seconds.

    Attributes:
        connect: TCP (+TLS) connect of a new connection.
        read: longest wait for any one read from the server.
        write: longest wait for any one write to the server.
        pool: longest wait for a free connection when ``max_connections`` are busy.
        total: hard deadline of the whole call (pool wait + connect + send + response).
            Every socket operation gets ``min(its phase timeout, time left)``; when the
            budget is spent the call raises :class:`~yai_spool.sls.errors.RequestTimeout`.
            Encoding and signing happen before the clock starts (they are CPU work).
    """

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0
    total: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            # bool is an int: reject it explicitly so a typo like read=True is loud.
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(
                    f"ClientTimeouts.{name} must be a finite number > 0, got {value!r}"
                )


@dataclass(frozen=True, slots=True)
class PutLogsResult:
    """A delivered PutLogs call: the server's ``x-log-requestid`` and the status (200)."""

    request_id: str
    status: int


# --------------------------------------------------------------------------- total deadline
#
# httpx's timeouts are per socket operation: a server that trickles one byte every
# ``read - 1`` seconds never trips them. A total deadline therefore has to reach every
# blocking operation. The clients put the call's monotonic deadline in a ContextVar and wrap
# httpcore's network backend so each connect / read / write / TLS handshake is given
# ``min(phase timeout, time left)`` and fails at once when nothing is left. httpcore does the
# I/O of a request in the calling thread (sync) or task (async), so the ContextVar read in
# the stream is the one set by that very call; concurrent calls do not see each other's.
# What this cannot bound (documented, not hidden): a blocking DNS lookup in the sync client
# (getaddrinfo has no timeout; the async backend resolves under its own fail_after).

_DEADLINE: ContextVar[float | None] = ContextVar("yai_spool_client_deadline", default=None)

_ABORTED: Final = "request aborted: the client was aborted (shutdown deadline)"


def _budget(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """The timeout to give one socket operation: the phase timeout capped by time left."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("total deadline of the call exceeded")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(
        self,
        stream: httpcore.NetworkStream,
        backend: _DeadlineBackend | None = None,
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
        data = self._stream.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))
        # An aborted socket reads as EOF; say why instead of "server disconnected".
        self._check(httpcore.ReadError)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # httpcore's sync write loops send() with one timeout for the whole buffer; split it
        # so the budget is re-read per piece and a large body cannot outlive the deadline.
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_PIECE):
            self._check(httpcore.WriteError)
            piece = bytes(view[start : start + _WRITE_PIECE])
            self._stream.write(piece, _budget(timeout, httpcore.WriteTimeout))

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
        budget = _budget(timeout, httpcore.ConnectTimeout)
        try:
            tls = self._stream.start_tls(ssl_context, server_hostname, budget)
        except BaseException:
            if self._backend is not None:  # httpcore closed the socket; drop our handle too
                self._backend.forget(self._handle)
                self._handle = None
            raise
        # The handle moves to the TLS stream: the plain one is never used (or closed) again.
        handle, self._handle = self._handle, None
        return _DeadlineStream(tls, self._backend, handle)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
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
        budget = _budget(timeout, httpcore.ConnectTimeout)
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
            return _DeadlineStream(_SyncStream(sock), self, handle)
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
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._backend.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # The anyio backend bounds the whole send with one fail_after, so no splitting needed.
        await self._stream.write(buffer, _budget(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        stream = await self._stream.start_tls(ssl_context, server_hostname, budget)
        return _AsyncDeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
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
        budget = _budget(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_tcp(host, port, budget, local_address, socket_options)
        return _AsyncDeadlineStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        stream = await self._backend.connect_unix_socket(path, budget, socket_options)
        return _AsyncDeadlineStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


_B = TypeVar("_B", _DeadlineBackend, _AsyncDeadlineBackend)


def _install_deadline_backend(
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


# ----------------------------------------------------------------------------- helpers


def _mask_url_password(url: str | None) -> str | None:
    """``http://user:pw@host:3128`` -> ``http://user:***@host:3128`` for reprs and messages."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _where(project: str, logstore: str) -> str:
    return f"PutLogs {project}/{logstore}"


def _transport_error(exc: httpx.HTTPError, where: str) -> TransportError:
    """Translate one httpx exception; the caller raises the result ``from exc``.

    Order matters: ``httpx.ConnectTimeout`` is both a timeout and a connect failure and is
    reported as a timeout (the budget ran out), while a refused or unresolvable connection is
    a ``ConnectError``. Either way nothing reached the server; a ``ConnectionLost`` or a read
    timeout, by contrast, may follow a request the server did receive (possible duplicate).
    """
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"{where}: timed out ({detail})")
    if isinstance(exc, httpx.ConnectError | httpx.ProxyError):
        return ConnectError(f"{where}: cannot connect ({detail})")
    if isinstance(
        exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError | httpx.CloseError
    ):
        return ConnectionLost(f"{where}: connection lost ({detail})")
    return TransportError(f"{where}: transport failure ({detail})")


# ------------------------------------------------------------------------- shared base


class _ClientBase:
    """Configuration, request preparation and failure translation shared by the twins.

    No I/O happens here; the twins own one httpx client each and only send.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        credentials_provider: CredentialsProvider | None = None,
        compression: Compression | str = Compression.LZ4,
        signature_version: SignatureVersion = "v1",
        signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
        region: str | None = None,
        timeouts: ClientTimeouts | None = None,
        user_agent: str | None = None,
        proxy: str | None = None,
        max_connections: int = 10,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        try:
            self._endpoint = Endpoint.parse(endpoint)
            self._compression = Compression(compression)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if signature_version not in ("v1", "v4"):
            raise ConfigError(f"signature_version must be 'v1' or 'v4', got {signature_version!r}")
        self._signature_method = validate_signature_method(signature_method)
        if signature_version == "v4":
            # Fail at construction, not on the first call: the region is given or derivable
            # from a regional endpoint such as cn-hangzhou.log.aliyuncs.com.
            region = region or region_from_host(self._endpoint.host)
            if not region:
                raise ConfigError("signature_version='v4' needs region= (e.g. 'cn-hangzhou')")
        if max_connections < 1:
            raise ConfigError(f"max_connections must be >= 1, got {max_connections!r}")
        self._credentials: CredentialsProvider = resolve_credentials(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            provider=credentials_provider,
        )
        self._signature_version: SignatureVersion = signature_version
        self._region = region
        self._timeouts = timeouts if timeouts is not None else ClientTimeouts()
        self._user_agent = user_agent
        self._proxy = proxy
        self._max_connections = max_connections
        self._verify = verify
        self._closed = False
        self._http = self._open_http()

    def _open_http(self) -> Any:
        """Build the flavour's httpx client (the twins' only construction difference)."""
        raise NotImplementedError

    # -- configuration handed to httpx -------------------------------------------------

    def _transport_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by httpx.HTTPTransport and httpx.AsyncHTTPTransport."""
        return {
            "verify": self._verify,
            # trust_env=False: HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE and .netrc are *not*
            # read. A logging shipper inherits whatever environment the host app has, and a
            # stray proxy variable silently rerouting (or breaking) log delivery is worse than
            # asking for an explicit proxy=.
            "trust_env": False,
            "http1": True,
            "http2": False,
            "limits": httpx.Limits(
                max_connections=self._max_connections,
                max_keepalive_connections=self._max_connections,
                keepalive_expiry=_KEEPALIVE_EXPIRY,
            ),
            "proxy": self._proxy,
            # httpcore's connect retries: none. The flusher is the only retry layer.
            "retries": 0,
        }

    def _client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by httpx.Client and httpx.AsyncClient."""
        return {
            "timeout": self._httpx_timeout(self._timeouts.total),
            "follow_redirects": False,
            "trust_env": False,
        }

    def _httpx_timeout(self, left: float) -> httpx.Timeout:
        """Per-phase timeouts, none longer than the budget ``left``."""
        t = self._timeouts
        return httpx.Timeout(
            connect=min(t.connect, left),
            read=min(t.read, left),
            write=min(t.write, left),
            pool=min(t.pool, left),
        )

    # -- per call ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def _prepare(
        self, project: str, logstore: str, payload: LogGroup | bytes, hash_key: str | None
    ) -> PreparedRequest:
        """Encode, compress and sign one call (fresh credentials, fresh date)."""
        self._check_open()
        destination = Destination(self._endpoint, project, logstore)
        credentials: Credentials = self._credentials.get_credentials()
        options: dict[str, Any] = {
            "compression": self._compression,
            "signature_version": self._signature_version,
            "signature_method": self._signature_method,
            "region": self._region,
            "hash_key": hash_key,
        }
        if self._user_agent is not None:
            options["user_agent"] = self._user_agent
        if isinstance(payload, bytes | bytearray | memoryview):
            return build_put_logs_request_from_raw(
                destination, bytes(payload), credentials, **options
            )
        return build_put_logs_request(destination, payload, credentials, **options)

    @contextmanager
    def _call_deadline(self) -> Iterator[None]:
        """Arm the total deadline for the I/O of one call (read by the deadline backend)."""
        token = _DEADLINE.set(time.monotonic() + self._timeouts.total)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    @staticmethod
    def _httpx_request(
        client: httpx.Client | httpx.AsyncClient, prepared: PreparedRequest
    ) -> httpx.Request:
        # prepared.headers carries Host: {project}.{host}; for IP endpoints the URL names the
        # IP only, and httpx keeps an explicit Host header instead of deriving one from it.
        # The client's default timeouts (each phase capped by the total) apply.
        return client.build_request(
            prepared.method, prepared.url, headers=prepared.headers, content=prepared.body
        )

    @staticmethod
    def _result(response: httpx.Response, project: str, logstore: str) -> PutLogsResult:
        error = parse_error_response(
            response.status_code,
            response.headers,
            response.content,
            project=project,
            logstore=logstore,
        )
        if error is None:
            return PutLogsResult(
                request_id=response.headers.get("x-log-requestid", ""),
                status=response.status_code,
            )
        raise error

    def __repr__(self) -> str:
        # Deliberately no credentials at all: not the secret, not the token, and not the
        # provider's own repr (third-party providers may not mask).
        return (
            f"{type(self).__name__}(endpoint={str(self._endpoint)!r}, "
            f"credentials={type(self._credentials).__name__}, "
            f"compression={self._compression.value!r}, "
            f"signature_version={self._signature_version!r}, "
            f"signature_method={self._signature_method!r}, region={self._region!r}, "
            f"timeouts={self._timeouts!r}, proxy={_mask_url_password(self._proxy)!r}, "
            f"closed={self._closed})"
        )


# ------------------------------------------------------------------------------ twins


class PutLogsClient(_ClientBase):
    """Blocking PutLogs client over one :class:`httpx.Client` (thread-safe, keep-alive).

    One call is one HTTP exchange: **no retries** (httpx transport ``retries=0``, no
    redirects). Retrying, backoff and what to do with the batch belong to the flusher, which
    classifies the raised exception with :func:`yai_spool.sls.errors.classify_exception`.

    Args:
        endpoint: ``cn-hangzhou.log.aliyuncs.com``, ``https://...`` or ``http://127.0.0.1:8080``.
        access_key_id, access_key_secret, security_token: static credentials; or
        credentials_provider: asked on every call (the STS refresh seam); with neither, the
            ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``_SECRET`` / ``ALIBABA_CLOUD_SECURITY_TOKEN``
            environment variables are read (see
            :func:`~yai_spool.sls.credentials.resolve_credentials`).
        compression: lz4 (default), zstd, deflate or none.
        signature_version: ``"v1"`` (default) or ``"v4"``.
        signature_method: V1's HMAC: ``"hmac-sha1"`` (default, what the SDKs send) or
            ``"hmac-sha256"`` (what Alibaba's OpenAPI gateway sends); sent as
            ``x-log-signaturemethod``. V4 ignores it (always HMAC-SHA256).
        region: the V4 signing region; derived from a regional endpoint
            (``cn-hangzhou.log.aliyuncs.com``) when omitted.
        timeouts: per-phase timeouts and the total deadline of one call.
        user_agent: overrides the default User-Agent.
        proxy: explicit HTTP(S) proxy URL. Environment proxies are ignored
            (``trust_env=False``) so the host application's environment cannot reroute logs.
        max_connections: connection pool size (keep-alive connections kept up to this).
        verify: TLS verification (``True``, a CA bundle path, or an ``ssl.SSLContext``).

    Raises (from the put methods):
        SLSError: the server answered with a status other than 200.
        ConnectError / RequestTimeout / ConnectionLost (TransportError): no usable answer.
        RuntimeError: the client is closed.
    """

    _http: httpx.Client
    _backend: _DeadlineBackend

    def _open_http(self) -> httpx.Client:
        transport = httpx.HTTPTransport(**self._transport_kwargs())
        self._backend = _install_deadline_backend(transport, _DeadlineBackend)
        return httpx.Client(transport=transport, **self._client_kwargs())

    def put_logs(
        self, project: str, logstore: str, group: LogGroup, *, hash_key: str | None = None
    ) -> PutLogsResult:
        """Send one LogGroup; return the request id on HTTP 200, raise otherwise."""
        prepared = self._prepare(project, logstore, group, hash_key)
        return self._send(prepared, project, logstore)

    def put_raw(
        self, project: str, logstore: str, raw: bytes, *, hash_key: str | None = None
    ) -> PutLogsResult:
        """Send an already-encoded LogGroup (protobuf bytes, uncompressed) unchanged."""
        prepared = self._prepare(project, logstore, raw, hash_key)
        return self._send(prepared, project, logstore)

    def _send(self, prepared: PreparedRequest, project: str, logstore: str) -> PutLogsResult:
        request = self._httpx_request(self._http, prepared)
        try:
            with self._call_deadline():
                response = self._http.send(request)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, _where(project, logstore)) from exc
        return self._result(response, project, logstore)

    def abort(self) -> None:
        """Cancel every call in flight, from any thread; later calls fail at once.

        Each call blocked in connect, TLS handshake, send or receive raises
        :class:`~yai_spool.sls.errors.ConnectError` / :class:`~yai_spool.sls.errors.ConnectionLost`
        within microseconds (whether the server got the request is unknown, as for any lost
        connection). Idempotent; :meth:`close` is still needed to release the pool. This is
        how a flusher keeps its shutdown deadline against an endpoint that never answers.
        """
        self._backend.abort()

    def close(self) -> None:
        """Close the connection pool. Idempotent."""
        if not self._closed:
            self._closed = True
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


class AsyncPutLogsClient(_ClientBase):
    """Async twin of :class:`PutLogsClient` over one :class:`httpx.AsyncClient`.

    Same arguments, same exceptions, same **no-retry** rule; ``put_logs``/``put_raw`` are
    coroutines and the pool is closed with ``await client.aclose()`` (``close`` is an alias)
    or ``async with``. Safe for many concurrent calls from one event loop.
    """

    _http: httpx.AsyncClient

    def _open_http(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(**self._transport_kwargs())
        _install_deadline_backend(transport, _AsyncDeadlineBackend)
        return httpx.AsyncClient(transport=transport, **self._client_kwargs())

    async def put_logs(
        self, project: str, logstore: str, group: LogGroup, *, hash_key: str | None = None
    ) -> PutLogsResult:
        """Send one LogGroup; return the request id on HTTP 200, raise otherwise."""
        prepared = self._prepare(project, logstore, group, hash_key)
        return await self._send(prepared, project, logstore)

    async def put_raw(
        self, project: str, logstore: str, raw: bytes, *, hash_key: str | None = None
    ) -> PutLogsResult:
        """Send an already-encoded LogGroup (protobuf bytes, uncompressed) unchanged."""
        prepared = self._prepare(project, logstore, raw, hash_key)
        return await self._send(prepared, project, logstore)

    async def _send(self, prepared: PreparedRequest, project: str, logstore: str) -> PutLogsResult:
        request = self._httpx_request(self._http, prepared)
        try:
            with self._call_deadline():
                response = await self._http.send(request)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, _where(project, logstore)) from exc
        return self._result(response, project, logstore)

    async def aclose(self) -> None:
        """Close the connection pool. Idempotent."""
        if not self._closed:
            self._closed = True
            await self._http.aclose()

    close = aclose

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await self.aclose()


# ------------------------------------------------------------------------- SDK adapter


class _RawLogGroup:
    """Quacks like the SDK's protobuf LogGroup for ``put_log_raw``: serializes to given bytes."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    def SerializeToString(self) -> bytes:  # the protobuf name the SDK calls
        return self._raw


class _SdkCredentialsProvider:
    """Our provider seen through the SDK's provider protocol; asked on every signed attempt."""

    def __init__(self, provider: CredentialsProvider, sdk_credentials_type: Any) -> None:
        self._provider = provider
        self._type = sdk_credentials_type

    def get_credentials(self) -> Any:
        c = self._provider.get_credentials()
        return self._type(c.access_key_id, c.access_key_secret, c.security_token)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self._provider).__name__})"


class _SdkAttemptFailed(Exception):  # internal carrier, never escapes
    """Carries an SDK LogException past ``LogClient._send``'s ``except LogException`` retry."""

    def __init__(self, original: Exception) -> None:
        super().__init__(type(original).__name__)
        self.original = original


@functools.cache
def _single_attempt_client_type(log_client_type: type[Any]) -> type[Any]:
    """A LogClient subclass whose ``_send`` loop makes exactly one attempt.

    ``LogClient._send`` loops ``for _ in range(10)`` around ``self._sendRequest(...)`` and
    catches only ``LogException``. Re-raising the attempt's LogException wrapped in another
    type leaves the loop at once (no retry, no ``time.sleep(1)``, no credentials-refresher
    detour). ``_sendRequest`` is private SDK API (checked against 0.9.52, pinned < 0.10).
    """

    class _SingleAttemptLogClient(log_client_type):  # type: ignore[misc]
        def _sendRequest(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super()._sendRequest(*args, **kwargs)
            except Exception as exc:
                raise _SdkAttemptFailed(exc) from exc

    return _SingleAttemptLogClient


def _exception_chain(root: BaseException | None) -> list[BaseException]:
    """Every exception nested in ``root``: args, urllib3's ``reason``, causes and contexts.

    requests/urllib3 wrap the socket-level error several layers deep, e.g. through a proxy
    ``ProxyError(MaxRetryError(reason=ProxyError('Unable to connect to proxy',
    RemoteDisconnected(...))))``; the innermost error is what tells a refused connection
    from a dropped one.
    """
    seen: list[BaseException] = []
    stack = [root]
    while stack:
        exc = stack.pop()
        if exc is None or any(exc is s for s in seen) or len(seen) > 32:
            continue
        seen.append(exc)
        stack.extend(a for a in exc.args if isinstance(a, BaseException))
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
        stack.extend((exc.__cause__, exc.__context__))
    return seen


def _sdk_transport_error(cause: BaseException | None, where: str) -> TransportError:
    """Classify a failure without an HTTP response by its ``requests`` exception.

    The SDK turns every ``requests`` exception into ``LogException('LogRequestError',
    str(ex))`` inside an ``except`` block, so the original survives as ``__context__``;
    callers pass that (or the requests exception itself).
    """
    import http.client  # noqa: PLC0415 - only this rare path needs it

    import requests  # noqa: PLC0415 - requests is only present with the optional SDK
    from urllib3.exceptions import ConnectTimeoutError as Urllib3ConnectTimeout  # noqa: PLC0415
    from urllib3.exceptions import (  # noqa: PLC0415 - same
        NewConnectionError,
        ProtocolError,
        ReadTimeoutError,
    )

    detail = f"{type(cause).__name__}: {cause}" if cause is not None else "no detail"
    chain = _exception_chain(cause)

    def has(*types_: type[BaseException]) -> bool:
        return any(isinstance(e, types_) for e in chain)

    # Refused first: urllib3's NewConnectionError subclasses its ConnectTimeoutError.
    if has(NewConnectionError, ConnectionRefusedError):
        return ConnectError(f"{where}: cannot connect ({detail})")
    if has(requests.Timeout, ReadTimeoutError, Urllib3ConnectTimeout, TimeoutError):
        return RequestTimeout(f"{where}: timed out ({detail})")
    if has(
        http.client.RemoteDisconnected,
        http.client.IncompleteRead,
        ProtocolError,
        ConnectionResetError,
        BrokenPipeError,
        requests.exceptions.ChunkedEncodingError,
    ):
        # The connection died after the request was (perhaps) sent.
        return ConnectionLost(f"{where}: connection lost ({detail})")
    if has(requests.ConnectionError):
        return ConnectError(f"{where}: cannot connect ({detail})")
    return TransportError(f"{where}: transport failure ({detail})")


class SdkPutLogsClient:
    """The :class:`PutLogsClient` interface over the official SDK's ``LogClient.put_logs``.

    A baseline for benchmarks and a bridge for users of ``aliyun-log-python-sdk`` (optional
    extra ``yai-spool[sdk]``; imported when this class is instantiated). It is blocking and
    not a drop-in for the native clients' guarantees:

    **Retries (SDK behaviour, 0.9.x ``LogClient._send``).** Up to 10 attempts; after *every*
    failed attempt, including the last, it calls ``time.sleep(1)``. It retries when the
    error code is ``InternalServerError`` or ``RequestTimeout``, on any status >= 500, and
    on transport errors whose message contains ``HTTPConnectionPool`` -- i.e. plain HTTP
    only: HTTPS transport errors (``HTTPSConnectionPool``) are raised at once. So any 5xx
    costs ~10 s; a plain-HTTP timeout up to 10 x (connect+read) + 10 s. A User-Agent
    containing ``log-cli-v-`` makes the loop infinite; it is refused here.
    ``sdk_retries=False`` bounds the loop to one attempt through a subclass overriding the
    private ``LogClient._sendRequest`` (no public knob exists); there is no way to keep
    retries but shorten the 1 s sleeps short of patching ``time.sleep``, which we do not.

    **Timeouts.** The SDK passes ``LogClient.timeout`` (default 120 s) to ``requests`` as
    one number, used for both connect and read. This adapter sets it to the tuple
    ``(timeouts.connect, timeouts.read)``. ``timeouts.write``, ``.pool`` and ``.total`` are
    **not enforceable** through the SDK (requests has no total deadline); with SDK retries
    on, a call can block for ~10 x (connect + read) + 10 s.

    **Mapping our LogGroup onto LogItem/PutLogsRequest, and the SDK's quirks.**
    ``Log.time`` -> ``LogItem(timestamp)``, but 0 means "now" to the SDK, and values
    > 1e10 are taken as milliseconds. ``Log.time_ns`` -> ``time_nano_part``, but the SDK
    *always* writes ``Time_ns`` and fills the current sub-second nanoseconds when it is
    ``None`` or 0. Content values: ``bytes`` go through unchanged, ``str`` is UTF-8 encoded.
    ``topic`` -> ``topic``; ``tags`` -> ``logtags``. ``source``: the SDK replaces an empty
    source with the host's IP (found by a UDP-connect lookup); constructing ``LogClient``
    with ``source=""`` here keeps an empty source empty and avoids that lookup.
    ``put_raw`` without a hash key under lz4/none goes through ``put_log_raw`` and is
    byte-exact; with a hash key or zstd it is decoded and re-sent through ``put_logs`` with
    the quirks above. Compression: lz4 and none; zstd only if the ``zstd`` package the SDK
    uses is installed; deflate is not supported by the SDK (``ConfigError``).

    **Signatures.** ``signature_version`` ``"v1"`` or ``"v4"`` as the native clients; the
    SDK's ``AuthV1`` hard-codes ``x-log-signaturemethod: hmac-sha1``, so
    ``signature_method="hmac-sha256"`` is refused with a ``ConfigError`` (use the native
    clients for it).

    **Proxies.** The SDK's ``requests.Session`` honours ``HTTP(S)_PROXY`` / ``NO_PROXY``
    (``trust_env``), unlike the native clients; ``proxy=`` additionally pins one.

    Failures are mapped like the native clients: a server answer (any status != 200) is
    re-parsed with :func:`~yai_spool.sls.errors.parse_error_response` from the SDK exception's
    status, headers and body, so codes and request ids match; no answer becomes
    ``ConnectError`` / ``RequestTimeout`` / ``ConnectionLost`` from the ``requests`` cause.
    Caveat: the SDK replaces an *empty* error body by its own JSON with code
    ``LogRequestError``.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        credentials_provider: CredentialsProvider | None = None,
        compression: Compression | str = Compression.LZ4,
        signature_version: SignatureVersion = "v1",
        signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
        region: str | None = None,
        timeouts: ClientTimeouts | None = None,
        user_agent: str | None = None,
        proxy: str | None = None,
        sdk_retries: bool = True,
    ) -> None:
        try:
            # The SDK is an optional extra and slow to import; only this class needs it.
            from aliyun.log import LogClient  # noqa: PLC0415
            from aliyun.log import compress as sdk_compress  # noqa: PLC0415
            from aliyun.log.credentials import Credentials as SdkCredentials  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover - the test environment has the SDK
            raise ConfigError(
                "SdkPutLogsClient needs the official SDK: pip install 'yai-spool[sdk]'"
            ) from exc
        try:
            self._compression = Compression(compression)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        if self._compression is Compression.DEFLATE:
            raise ConfigError("the official SDK cannot send deflate; use lz4, zstd or none")
        if self._compression is Compression.ZSTD and not sdk_compress.zstd_available:
            raise ConfigError("the official SDK sends zstd only with the 'zstd' package installed")
        if signature_version not in ("v1", "v4"):
            raise ConfigError(f"signature_version must be 'v1' or 'v4', got {signature_version!r}")
        if validate_signature_method(signature_method) != DEFAULT_SIGNATURE_METHOD:
            # AuthV1.sign_request hard-codes hmac-sha1 (aliyun-log-python-sdk 0.9.52).
            raise ConfigError(
                "the official SDK signs V1 with hmac-sha1 only; use PutLogsClient for hmac-sha256"
            )
        if signature_version == "v4":
            region = region or region_from_host(Endpoint.parse(endpoint).host)
            if not region:
                raise ConfigError("signature_version='v4' needs region= (e.g. 'cn-hangzhou')")
        if user_agent is not None and "log-cli-v-" in user_agent:
            raise ConfigError("a User-Agent containing 'log-cli-v-' makes the SDK retry forever")
        self._endpoint = endpoint
        self._signature_version = signature_version
        self._region = region
        self._timeouts = timeouts if timeouts is not None else ClientTimeouts()
        self._proxy = proxy
        self._sdk_retries = sdk_retries
        self._credentials = resolve_credentials(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            provider=credentials_provider,
        )
        client_type: type[Any] = (
            LogClient if sdk_retries else _single_attempt_client_type(LogClient)
        )
        self._sdk: Any = client_type(
            endpoint,
            source="",  # keep empty sources empty; also skips the SDK's host-IP lookup
            auth_version=signature_version,
            region=region or "",
            credentials_provider=_SdkCredentialsProvider(self._credentials, SdkCredentials),
        )
        # requests takes (connect, read); the SDK's default is one 120 s number for both.
        self._sdk.timeout = (self._timeouts.connect, self._timeouts.read)
        if user_agent is not None:
            self._sdk.set_user_agent(user_agent)
        if proxy is not None:
            # LogClient keeps its requests.Session private; there is no other way in.
            self._sdk._session.proxies.update({"http": proxy, "https": proxy})
        self._closed = False

    def put_logs(
        self, project: str, logstore: str, group: LogGroup, *, hash_key: str | None = None
    ) -> PutLogsResult:
        """Send one LogGroup through ``LogClient.put_logs`` (see the class docstring)."""
        from aliyun.log import LogItem, PutLogsRequest  # noqa: PLC0415 - optional SDK

        self._check_open()
        items = [
            # The SDK's stubs say str values; bytes pass its _get_binary() unchanged.
            LogItem(
                timestamp=log.time,
                contents=cast("Any", list(log.contents)),
                time_nano_part=log.time_ns,
            )
            for log in group.logs
        ]
        request = PutLogsRequest(
            project=project,
            logstore=logstore,
            topic=group.topic,
            source=group.source,
            logitems=items,
            hashKey=hash_key,
            compress=self._compression is not Compression.NONE,
            logtags=list(group.tags) or None,
            compress_type=self._compression.value
            if self._compression is not Compression.NONE
            else None,
        )
        return self._call(project, logstore, lambda: self._sdk.put_logs(request))

    def put_raw(
        self, project: str, logstore: str, raw: bytes, *, hash_key: str | None = None
    ) -> PutLogsResult:
        """Send an encoded LogGroup; byte-exact via ``put_log_raw`` when the SDK allows."""
        self._check_open()
        if hash_key is None and self._compression in (Compression.LZ4, Compression.NONE):
            body = _RawLogGroup(bytes(raw))
            compress = self._compression is Compression.LZ4
            return self._call(
                project,
                logstore,
                lambda: self._sdk.put_log_raw(project, logstore, body, compress=compress),
            )
        from yai_spool.sls.encoding import decode_log_group  # noqa: PLC0415 - rare path

        return self.put_logs(project, logstore, decode_log_group(bytes(raw)), hash_key=hash_key)

    def _call(self, project: str, logstore: str, send: Any) -> PutLogsResult:
        from aliyun.log import LogException  # noqa: PLC0415 - optional SDK

        try:
            response = send()
        except _SdkAttemptFailed as carried:
            # sdk_retries=False: the one attempt's own error. Mapped outside this block:
            # re-raising it in here would overwrite its __context__ (the requests error).
            failure: Exception = carried.original
        except Exception as exc:
            failure = exc
        else:
            return PutLogsResult(request_id=response.get_request_id() or "", status=200)
        if isinstance(failure, LogException):
            error = _map_log_exception(failure, project, logstore)
            if error is None:
                return PutLogsResult(request_id=failure.get_request_id() or "", status=200)
            raise error from failure
        import requests  # noqa: PLC0415 - requests is only present with the optional SDK

        if isinstance(failure, requests.RequestException | OSError):
            # Network errors the SDK did not wrap (none known in 0.9.52): mapped rather than
            # leaked, so callers only ever see our exception tree for a failed exchange.
            raise _sdk_transport_error(failure, _where(project, logstore)) from failure
        # Ours (a CredentialsError from the provider, raised while the SDK signs) or a bug:
        # either way not a transport failure, so it keeps its own type.
        raise failure

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def close(self) -> None:
        """Close the SDK's HTTP session. Idempotent."""
        if not self._closed:
            self._closed = True
            self._sdk._session.close()  # LogClient has no close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={self._endpoint!r}, "
            f"credentials={type(self._credentials).__name__}, "
            f"compression={self._compression.value!r}, "
            f"signature_version={self._signature_version!r}, region={self._region!r}, "
            f"timeouts={self._timeouts!r}, proxy={_mask_url_password(self._proxy)!r}, "
            f"sdk_retries={self._sdk_retries}, closed={self._closed})"
        )


def _map_log_exception(exc: Any, project: str, logstore: str) -> ShipError | YaiSpoolError | None:
    """SDK ``LogException`` -> what the native clients raise for the same failure.

    Returns ``None`` when the server did answer 200 and only the SDK objected (a non-JSON
    200 body, 'BadResponse'): the native clients count that as delivered, and so do we.
    """
    where = _where(project, logstore)
    headers = exc.resp_header
    # With a server answer the SDK stores the response's headers (a mapping); without one
    # resp_header keeps its default '' -- the reliable "no response" signal, since the SDK's
    # resp_status defaults to 200 even for transport errors.
    if hasattr(headers, "items"):
        body = exc.resp_body
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
        return parse_error_response(
            exc.resp_status, dict(headers.items()), raw, project=project, logstore=logstore
        )
    code = exc.get_error_code()
    if code == "LogRequestError":
        return _sdk_transport_error(exc.__context__, where)
    if code == "InvalidLogSize":
        # Raised before sending: > 512,000 logs or > 30 MB encoded. The batch itself is bad.
        return EncodeError(
            f"{where}: the SDK refused the batch ({code}: {exc.get_error_message()})"
        )
    return ConfigError(f"{where}: the SDK refused the request ({code}: {exc.get_error_message()})")
