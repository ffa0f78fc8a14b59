"""The official ``aliyun-log-python-sdk`` behind the PutLogs client interface.

Owns :class:`SdkPutLogsClient` (a baseline for benchmarks and a migration path) and the
mapping of the SDK's failures onto our exception tree. Configuration goes through the same
:class:`~yai_spool.sls.exchange.Exchange` as the native clients, so the same arguments are
refused with the same ``ConfigError`` messages; the SDK itself is imported only when the
class is instantiated (optional extra ``yai-spool[sdk]``), and httpx never is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Unpack, cast

from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import CredentialsProvider
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
from yai_spool.sls.exchange import ClosingContext, Exchange, PutLogsOptions, PutLogsResult
from yai_spool.sls.exchange import where as _where
from yai_spool.sls.signing import DEFAULT_SIGNATURE_METHOD

if TYPE_CHECKING:
    from yai_spool.sls.model import LogGroup

__all__ = ["SdkPutLogsClient"]


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


class SdkPutLogsClient(ClosingContext):
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
        self, endpoint: str, *, sdk_retries: bool = True, **options: Unpack[PutLogsOptions]
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
        self._exchange = exchange = Exchange.configure(endpoint, options)
        if exchange.compression is Compression.DEFLATE:
            raise ConfigError("the official SDK cannot send deflate; use lz4, zstd or none")
        if exchange.compression is Compression.ZSTD and not sdk_compress.zstd_available:
            raise ConfigError("the official SDK sends zstd only with the 'zstd' package installed")
        if exchange.signature_method != DEFAULT_SIGNATURE_METHOD:
            # AuthV1.sign_request hard-codes hmac-sha1 (aliyun-log-python-sdk 0.9.52).
            raise ConfigError(
                "the official SDK signs V1 with hmac-sha1 only; use PutLogsClient for hmac-sha256"
            )
        user_agent = exchange.user_agent
        if user_agent is not None and "log-cli-v-" in user_agent:
            raise ConfigError("a User-Agent containing 'log-cli-v-' makes the SDK retry forever")
        self._endpoint = endpoint
        self._compression = exchange.compression
        self._sdk_retries = sdk_retries
        client_type: type[Any] = (
            LogClient if sdk_retries else _single_attempt_client_type(LogClient)
        )
        self._sdk: Any = client_type(
            endpoint,
            source="",  # keep empty sources empty; also skips the SDK's host-IP lookup
            auth_version=exchange.signature_version,
            region=exchange.region or "",
            credentials_provider=_SdkCredentialsProvider(exchange.credentials, SdkCredentials),
        )
        # requests takes (connect, read); the SDK's default is one 120 s number for both.
        self._sdk.timeout = (exchange.timeouts.connect, exchange.timeouts.read)
        if user_agent is not None:
            self._sdk.set_user_agent(user_agent)
        if exchange.proxy is not None:
            # LogClient keeps its requests.Session private; there is no other way in.
            proxy = exchange.proxy
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

    def _call(self, project: str, logstore: str, send: Callable[[], Any]) -> PutLogsResult:
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

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={self._endpoint!r}, {self._exchange.describe()}, "
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
