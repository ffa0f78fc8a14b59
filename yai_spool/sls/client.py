"""Native PutLogs clients: one HTTP exchange per call, nothing more.

Owns :class:`PutLogsClient` (httpx, threads) and :class:`AsyncPutLogsClient` (httpx, asyncio
or trio through anyio), and the translation of httpx failures into our exception tree. Every
decision about a call lives once in the sans-I/O core :class:`~yai_spool.sls.exchange.Exchange`
(validation, request building and signing, the timeout arithmetic, status/body/headers ->
:class:`PutLogsResult` or :class:`~yai_spool.sls.errors.SLSError`); the total deadline is
enforced under httpx by :mod:`yai_spool.sls.deadline`. This module only moves bytes.

The names other layers import from here stay here: :class:`ClientTimeouts` and
:class:`PutLogsResult` (defined in :mod:`~yai_spool.sls.exchange`) and :class:`SdkPutLogsClient`
(the official SDK behind the same interface, :mod:`~yai_spool.sls.sdk_client`).

Invariants:

- **No retries, anywhere.** httpx transports are built with ``retries=0``; redirects are not
  followed; a failed call raises. The one retry policy lives in the flusher
  (:mod:`yai_spool.shipping.retry`), which needs to see every failure to classify it, back off with
  jitter and keep the data in the spool. (The SDK adapter is the documented exception: the
  SDK loops internally unless ``sdk_retries=False``.)
- **Success is status 200 exactly.** Anything else is an :class:`~yai_spool.sls.errors.SLSError`;
  failures below HTTP are a :class:`~yai_spool.sls.errors.TransportError` subclass raised
  ``from`` the httpx exception.
- **Every call signs afresh** and has **bounded time** (see :mod:`yai_spool.sls.exchange`):
  explicit connect/read/write/pool timeouts *and* a total deadline (:class:`ClientTimeouts`),
  the total enforced on the socket operations themselves, identically for both twins.
- **No secrets leak.** ``repr``/``str`` of clients and of the exceptions they raise never hold
  the access key secret or the STS token; the proxy's password is masked too.
- **The twins are twins.** ``_ClientBase`` holds the exchange, the httpx configuration and
  response/exception translation; :class:`PutLogsClient` and :class:`AsyncPutLogsClient`
  differ only in ``def``/``async def``, ``send``/``await send`` and ``close``/``aclose``, so a
  reviewer can diff them line by line.

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

import types
from typing import TYPE_CHECKING, Any, Self, Unpack

import httpx

from yai_spool.sls.deadline import AsyncDeadlineBackend, DeadlineBackend, install_deadline_backend
from yai_spool.sls.errors import (
    ConfigError,
    ConnectError,
    ConnectionLost,
    RequestTimeout,
    TransportError,
)
from yai_spool.sls.exchange import (
    ClientTimeouts,
    ClosingContext,
    Exchange,
    PutLogsOptions,
    PutLogsResult,
    SignatureVersion,
    where,
)
from yai_spool.sls.sdk_client import SdkPutLogsClient

if TYPE_CHECKING:
    import ssl

    from yai_spool.sls.model import LogGroup
    from yai_spool.sls.request import PreparedRequest

__all__ = [
    "AsyncPutLogsClient",
    "ClientTimeouts",
    "PutLogsClient",
    "PutLogsResult",
    "SdkPutLogsClient",
    "SignatureVersion",
]

# How long an idle keep-alive connection is kept. Flushers send every few seconds, so 30 s
# keeps one warm connection between flushes; the pool still checks a connection is not
# half-closed (``is_readable``) before reusing it, so a server-side idle close is harmless.
_KEEPALIVE_EXPIRY = 30.0


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
    """The exchange, the httpx configuration and the translation shared by the twins.

    No I/O happens here; the twins own one httpx client each and only send.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        max_connections: int = 10,
        verify: ssl.SSLContext | str | bool = True,
        **options: Unpack[PutLogsOptions],
    ) -> None:
        self._exchange = Exchange.configure(endpoint, options)
        if max_connections < 1:
            raise ConfigError(f"max_connections must be >= 1, got {max_connections!r}")
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
            "proxy": self._exchange.proxy,
            # httpcore's connect retries: none. The flusher is the only retry layer.
            "retries": 0,
        }

    def _client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by httpx.Client and httpx.AsyncClient."""
        timeouts = self._exchange.timeouts
        phases = timeouts.capped(timeouts.total)
        return {
            "timeout": httpx.Timeout(
                connect=phases.connect, read=phases.read, write=phases.write, pool=phases.pool
            ),
            "follow_redirects": False,
            "trust_env": False,
        }

    # -- per call ----------------------------------------------------------------------

    def _prepare(
        self, project: str, logstore: str, payload: LogGroup | bytes, hash_key: str | None
    ) -> PreparedRequest:
        """Encode, compress and sign one call (fresh credentials, fresh date)."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        return self._exchange.prepare(project, logstore, payload, hash_key)

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
        return Exchange.result(
            response.status_code, response.headers, response.content, project, logstore
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={str(self._exchange.endpoint)!r}, "
            f"{self._exchange.describe()}, closed={self._closed})"
        )


# ------------------------------------------------------------------------------ twins


class PutLogsClient(ClosingContext, _ClientBase):
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
    _backend: DeadlineBackend

    def _open_http(self) -> httpx.Client:
        transport = httpx.HTTPTransport(**self._transport_kwargs())
        self._backend = install_deadline_backend(transport, DeadlineBackend)
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
            with self._exchange.deadline():
                response = self._http.send(request)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, where(project, logstore)) from exc
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


class AsyncPutLogsClient(_ClientBase):
    """Async twin of :class:`PutLogsClient` over one :class:`httpx.AsyncClient`.

    Same arguments, same exceptions, same **no-retry** rule; ``put_logs``/``put_raw`` are
    coroutines and the pool is closed with ``await client.aclose()`` (``close`` is an alias)
    or ``async with``. Safe for many concurrent calls from one event loop.
    """

    _http: httpx.AsyncClient

    def _open_http(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(**self._transport_kwargs())
        install_deadline_backend(transport, AsyncDeadlineBackend)
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
            with self._exchange.deadline():
                response = await self._http.send(request)
        except httpx.HTTPError as exc:
            raise _transport_error(exc, where(project, logstore)) from exc
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
