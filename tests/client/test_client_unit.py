"""Pure client logic over httpx.MockTransport: status and exception mapping, configuration,
request shape, secret masking, lifecycle. No sockets; the emulator tests cover the wire."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpcore
import httpx
import pytest
from client_support import KEY_ID, LOGSTORE, PROJECT, SECRET, TOKEN

from yai_spool.sls import deadline, exchange
from yai_spool.sls.client import (
    AsyncPutLogsClient,
    ClientTimeouts,
    PutLogsClient,
    PutLogsResult,
    SdkPutLogsClient,
)
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.errors import (
    ConfigError,
    ConnectError,
    ConnectionLost,
    CredentialsError,
    Outcome,
    RequestTimeout,
    SLSError,
    TransportError,
    classify_exception,
)
from yai_spool.sls.model import Log, LogGroup

R = TypeVar("R")
GROUP = LogGroup(logs=(Log(time=1_700_000_000, contents=(("msg", "hello"),), time_ns=5),))


def sls_answer(
    status: int, code: str | None, message: str = "m", rid: str = "RID1"
) -> httpx.Response:
    body = (
        b"" if code is None else json.dumps({"errorCode": code, "errorMessage": message}).encode()
    )
    return httpx.Response(status, headers={"x-log-requestid": rid}, content=body)


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"x-log-requestid": "5B0A6B60BB6EE39764D458B5"})


def one_put(put_raw: Callable[..., R], put_logs: Callable[..., R], raw: bool) -> Callable[[], R]:
    """The call ``put_raw(PROJECT, LOGSTORE, b"")`` if ``raw``, else ``put_logs(..., GROUP)``."""
    if raw:
        return functools.partial(put_raw, PROJECT, LOGSTORE, b"")
    return functools.partial(put_logs, PROJECT, LOGSTORE, GROUP)


def put_error(client: PutLogsClient | AsyncPutLogsClient, *, raw: bool = False) -> BaseException:
    """What one ``put_logs`` (``put_raw`` if ``raw``) on either twin raises.

    The async twin runs in its own event loop and is closed there; the sync one is closed by
    its fixture.
    """
    expected = (SLSError, TransportError)
    if isinstance(client, PutLogsClient):
        with pytest.raises(expected) as info:
            one_put(client.put_raw, client.put_logs, raw)()
        return info.value

    async def run(client: AsyncPutLogsClient) -> BaseException:
        async with client:
            with pytest.raises(expected) as info:
                await one_put(client.put_raw, client.put_logs, raw)()
            return info.value

    return asyncio.run(run(client))


# ----------------------------------------------------------------------- configuration


@pytest.mark.parametrize("field", ["connect", "read", "write", "pool", "total"])
@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, True, "5"])
def test_timeouts_reject_non_positive_or_non_numbers(field: str, bad: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        ClientTimeouts(**{field: bad})


def test_timeouts_defaults_are_explicit() -> None:
    assert ClientTimeouts() == ClientTimeouts(
        connect=5.0, read=30.0, write=30.0, pool=5.0, total=60.0
    )


# What every client refuses (the native twins and the SDK adapter share Exchange.configure),
# then what only one kind refuses.
_EVERY_CLIENT_REFUSES: list[tuple[dict[str, Any], str]] = [
    ({"signature_version": "v2"}, "signature_version"),
    ({"signature_version": "v4"}, "region"),
    ({"signature_method": "hmac-md5"}, "signature_method must be one of"),
    ({"compression": "brotli"}, "brotli"),
]
_NATIVE = (PutLogsClient, AsyncPutLogsClient)
_CONFIG_ERRORS: list[tuple[type, dict[str, Any], str]] = [
    *(
        (cls, kwargs, match)
        for cls in (*_NATIVE, SdkPutLogsClient)
        for kwargs, match in _EVERY_CLIENT_REFUSES
    ),
    *((cls, {"max_connections": 0}, "max_connections") for cls in _NATIVE),
    (SdkPutLogsClient, {"compression": "deflate"}, "deflate"),
    (SdkPutLogsClient, {"signature_method": "hmac-sha256"}, "hmac-sha1 only"),
    (SdkPutLogsClient, {"signature_method": "sha1"}, "signature_method must be one of"),
    (SdkPutLogsClient, {"user_agent": "log-cli-v-0.1"}, "forever"),
]


@pytest.mark.parametrize(("cls", "kwargs", "match"), _CONFIG_ERRORS)
def test_bad_configuration_is_a_config_error(cls: type, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cls("sls.example.test", access_key_id=KEY_ID, access_key_secret=SECRET, **kwargs)


def test_phase_timeouts_are_capped_by_the_total() -> None:
    with PutLogsClient(
        "http://127.0.0.1:9",
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
        timeouts=ClientTimeouts(connect=5, read=30, write=30, pool=5, total=2),
    ) as client:
        timeout = client._http.timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (2, 2, 2, 2)


def test_connection_pool_is_bounded_and_env_is_not_trusted() -> None:
    with PutLogsClient(
        "http://127.0.0.1:9", access_key_id=KEY_ID, access_key_secret=SECRET, max_connections=3
    ) as client:
        assert client._http.trust_env is False
        pool = client._http._transport._pool
        assert pool._max_connections == 3
        assert pool._retries == 0


@pytest.mark.parametrize(
    ("cls", "backend"),
    [
        (PutLogsClient, deadline.DeadlineBackend),
        (AsyncPutLogsClient, deadline.AsyncDeadlineBackend),
    ],
)
def test_total_deadline_backend_is_installed(cls: type, backend: type) -> None:
    """Guards the httpx/httpcore internals the total deadline hooks into (see client.py)."""
    client = cls("http://127.0.0.1:9", access_key_id=KEY_ID, access_key_secret=SECRET)
    assert isinstance(client._http._transport._pool._network_backend, backend)
    if isinstance(client, PutLogsClient):
        client.close()
    else:
        asyncio.run(client.aclose())


# -------------------------------------------------------------------- status mapping


def test_200_returns_request_id(sync_mock: Callable[..., PutLogsClient]) -> None:
    client = sync_mock(ok)
    assert client.put_logs(PROJECT, LOGSTORE, GROUP) == PutLogsResult(
        request_id="5B0A6B60BB6EE39764D458B5", status=200
    )


STATUS_CASES = [
    (500, "InternalServerError", Outcome.RETRY),
    (503, "ServerBusy", Outcome.RETRY),
    (502, None, Outcome.RETRY),  # empty 5xx body -> BadResponse, retried by status
    (401, "Unauthorized", Outcome.CREDENTIALS),
    (401, "SignatureNotMatch", Outcome.CREDENTIALS),
    (404, "LogStoreNotExist", Outcome.CREDENTIALS),
    (403, "WriteQuotaExceed", Outcome.THROTTLED),
    (400, "PostBodyInvalid", Outcome.REJECTED),
    (413, "PostBodyTooLarge", Outcome.REJECTED),
    (201, None, Outcome.RETRY),  # only 200 is success
    (204, None, Outcome.RETRY),
]


@pytest.mark.parametrize(("status", "code", "outcome"), STATUS_CASES)
def test_non_200_raises_sls_error(
    mock_client: Callable[..., Any], status: int, code: str | None, outcome: Outcome
) -> None:
    error = put_error(mock_client(lambda _: sls_answer(status, code, rid="RIDX")))
    assert isinstance(error, SLSError)
    assert error.status == status
    assert error.error_code == (code or "BadResponse")
    assert error.request_id == "RIDX"
    assert classify_exception(error) is outcome
    assert str(error).startswith(f"PutLogs {PROJECT}/{LOGSTORE}: SLS {status} ")


# ----------------------------------------------------------------- exception mapping

EXCEPTION_CASES = [
    (httpx.ConnectError("[Errno 111] Connection refused"), ConnectError),
    (httpx.ProxyError("proxy said no"), ConnectError),
    (httpx.ConnectTimeout("timed out"), RequestTimeout),
    (httpx.ReadTimeout("timed out"), RequestTimeout),
    (httpx.WriteTimeout("timed out"), RequestTimeout),
    (httpx.PoolTimeout("timed out"), RequestTimeout),
    (httpx.ReadError("reset by peer"), ConnectionLost),
    (httpx.WriteError("broken pipe"), ConnectionLost),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), ConnectionLost),
    (httpx.UnsupportedProtocol("nope"), TransportError),
]


@pytest.mark.parametrize("raw", [False, True], ids=["put_logs", "put_raw"])
@pytest.mark.parametrize(("raised", "expected"), EXCEPTION_CASES)
def test_httpx_exceptions_map_to_transport_errors(
    mock_client: Callable[..., Any], raised: httpx.HTTPError, expected: type, raw: bool
) -> None:
    def handler(_: httpx.Request) -> httpx.Response:
        raise raised

    error = put_error(mock_client(handler), raw=raw)
    assert type(error) is expected
    assert error.__cause__ is raised
    assert f"{PROJECT}/{LOGSTORE}" in str(error)
    assert classify_exception(error) is Outcome.RETRY


# ------------------------------------------------------------------- request shape


def test_each_call_asks_the_provider_and_signs_afresh(
    sync_mock: Callable[..., PutLogsClient],
) -> None:
    calls: list[int] = []
    seen: list[httpx.Request] = []

    class CountingProvider:
        def get_credentials(self) -> Credentials:
            calls.append(1)
            return Credentials(KEY_ID, SECRET, TOKEN)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    client = sync_mock(
        handler, access_key_id=None, access_key_secret=None, credentials_provider=CountingProvider()
    )
    for _ in range(3):
        client.put_logs(PROJECT, LOGSTORE, GROUP)
    assert len(calls) == 3
    request = seen[0]
    assert request.method == "POST"
    assert request.headers["host"] == f"{PROJECT}.127.0.0.1"
    assert request.url.path == f"/logstores/{LOGSTORE}/shards/lb"
    assert request.headers["x-acs-security-token"] == TOKEN
    assert request.headers["authorization"].startswith(f"LOG {KEY_ID}:")


def test_hash_key_routes_and_put_raw_sends_bytes_unchanged(
    sync_mock: Callable[..., PutLogsClient],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    client = sync_mock(handler, compression="none")
    raw = b"\x0a\x00"  # an encoded LogGroup with one empty Log
    client.put_raw(PROJECT, LOGSTORE, raw, hash_key="abc def/+=")
    request = seen[0]
    assert request.url.path == f"/logstores/{LOGSTORE}/shards/route"
    assert request.url.params["key"] == "abc def/+="
    assert request.content == raw
    assert "x-log-compresstype" not in request.headers


# ------------------------------------------------------------------- secrets, lifecycle


def test_repr_masks_secrets_and_proxy_password() -> None:
    client = PutLogsClient(
        "http://127.0.0.1:9",
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
        security_token=TOKEN,
        proxy="http://user:proxy-pass-xyz@127.0.0.1:3128",
    )
    try:
        text = repr(client) + str(client)
        for secret in (SECRET, TOKEN, "proxy-pass-xyz"):
            assert secret not in text
        assert "user:***@127.0.0.1:3128" in text
        assert "signature_method='hmac-sha1'" in text
    finally:
        client.close()


@pytest.mark.parametrize(("method", "length"), [("hmac-sha1", 28), ("hmac-sha256", 44)])
def test_signature_method_is_sent_and_used_on_every_call(
    sync_mock: Callable[..., PutLogsClient], method: str, length: int
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    client = sync_mock(handler, signature_method=method)
    client.put_logs(PROJECT, LOGSTORE, GROUP)
    client.put_raw(PROJECT, LOGSTORE, b"")
    for request in seen:
        assert request.headers["x-log-signaturemethod"] == method
        assert len(request.headers["authorization"].rsplit(":", 1)[1]) == length


def test_close_is_idempotent_and_final(sync_mock: Callable[..., PutLogsClient]) -> None:
    client = sync_mock(ok)
    with client:
        client.put_logs(PROJECT, LOGSTORE, GROUP)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client.put_logs(PROJECT, LOGSTORE, GROUP)
    assert "closed=True" in repr(client)


def test_async_close_is_idempotent_and_final(async_mock: Callable[..., AsyncPutLogsClient]) -> None:
    async def run() -> None:
        client = async_mock(ok)
        async with client:
            assert (await client.put_logs(PROJECT, LOGSTORE, GROUP)).status == 200
        await client.aclose()
        await client.close()
        with pytest.raises(RuntimeError, match="closed"):
            await client.put_logs(PROJECT, LOGSTORE, GROUP)

    asyncio.run(run())


# -------------------------------------------------------------- total-deadline plumbing


class _FakeStream(httpcore.NetworkStream):
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []
        self.pieces: list[int] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.timeouts.append(timeout)
        return b""

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.timeouts.append(timeout)
        self.pieces.append(len(buffer))


def test_deadline_caps_each_socket_operation_and_splits_writes() -> None:
    inner = _FakeStream()
    stream = deadline.DeadlineStream(inner)
    token = exchange._DEADLINE.set(time.monotonic() + 1000.0)
    try:
        stream.read(10, timeout=5.0)
        stream.read(10, timeout=None)
        stream.write(b"x" * (deadline.WRITE_PIECE * 2 + 1), timeout=5.0)
    finally:
        exchange._DEADLINE.reset(token)
    assert inner.timeouts[0] == 5.0
    assert inner.timeouts[1] is not None
    assert 990 < inner.timeouts[1] <= 1000
    assert inner.pieces == [deadline.WRITE_PIECE, deadline.WRITE_PIECE, 1]


def test_spent_deadline_fails_the_next_operation_at_once() -> None:
    stream = deadline.DeadlineStream(_FakeStream())
    token = exchange._DEADLINE.set(time.monotonic() - 1.0)
    try:
        with pytest.raises(httpcore.ReadTimeout):
            stream.read(10, timeout=5.0)
        with pytest.raises(httpcore.WriteTimeout):
            stream.write(b"x", timeout=5.0)
    finally:
        exchange._DEADLINE.reset(token)


def test_without_a_call_in_progress_timeouts_pass_through() -> None:
    inner = _FakeStream()
    deadline.DeadlineStream(inner).read(1, timeout=3.0)
    assert inner.timeouts == [3.0]


# ---------------------------------------------------------------- SDK adapter config


def test_sdk_adapter_without_the_zstd_package_refuses_zstd() -> None:
    from aliyun.log import compress as sdk_compress

    if sdk_compress.zstd_available:
        pytest.skip("the SDK's optional 'zstd' package is installed here")
    with pytest.raises(ConfigError, match="zstd"):
        SdkPutLogsClient(
            "sls.example.test", access_key_id=KEY_ID, access_key_secret=SECRET, compression="zstd"
        )


def test_sdk_adapter_sets_explicit_timeouts_and_masks_secrets() -> None:
    with SdkPutLogsClient(
        "sls.example.test",
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
        security_token=TOKEN,
        timeouts=ClientTimeouts(connect=1.5, read=7.0),
    ) as client:
        assert client._sdk.timeout == (1.5, 7.0)
        assert SECRET not in repr(client)
        assert TOKEN not in repr(client)


class FailingProvider:
    def get_credentials(self) -> Credentials:
        raise CredentialsError("STS refresh failed")


def test_provider_failure_keeps_its_type(sync_mock: Callable[..., PutLogsClient]) -> None:
    client = sync_mock(
        ok, access_key_id=None, access_key_secret=None, credentials_provider=FailingProvider()
    )
    with pytest.raises(CredentialsError):
        client.put_logs(PROJECT, LOGSTORE, GROUP)
    assert classify_exception(CredentialsError("x")) is Outcome.CREDENTIALS


@pytest.mark.parametrize("sdk_retries", [True, False])
def test_sdk_provider_failure_keeps_its_type(sdk_retries: bool) -> None:
    # The SDK asks the provider while signing, before any network I/O.
    with (
        SdkPutLogsClient(
            "sls.example.test", credentials_provider=FailingProvider(), sdk_retries=sdk_retries
        ) as client,
        pytest.raises(CredentialsError),
    ):
        client.put_logs(PROJECT, LOGSTORE, GROUP)
