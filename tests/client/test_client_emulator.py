"""PutLogsClient and AsyncPutLogsClient against the real emulator on 127.0.0.1.

Covers the wire end to end: read-back byte-exact for every compression and both signature
versions, STS tokens, hash-key routing, connection reuse, timeouts and the total deadline,
dropped connections, a down server, every error class, the no-retry rule, and secrets in
reprs, exceptions and log output.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from typing import Any

import pytest
from client_support import (
    KEY_ID,
    PROJECT,
    REGION,
    SECRET,
    TMP_KEY_ID,
    TMP_SECRET,
    TOKEN,
)

from yai_spool.emulator import Emulator
from yai_spool.sls.client import (
    AsyncPutLogsClient,
    ClientTimeouts,
    PutLogsClient,
    PutLogsResult,
)
from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import encode_log_group
from yai_spool.sls.errors import (
    DEFAULT_STATUS,
    ConnectError,
    ConnectionLost,
    ErrorCode,
    Outcome,
    RequestTimeout,
    ShipError,
    SLSError,
    classify_exception,
)
from yai_spool.sls.model import Log, LogGroup

_names = itertools.count(1)
REQUEST_ID = re.compile(r"[0-9A-F]{24}")


@pytest.fixture
def store() -> str:
    """A logstore name no other test uses: isolation on the shared emulator."""
    return f"store-{next(_names):04d}"


def sample_group(n: int = 3) -> LogGroup:
    """Every field the model has: bytes (non-UTF-8) and str values, duplicate keys, time_ns,
    topic, source and tags."""
    logs = tuple(
        Log(
            time=1_700_000_000 + i,
            contents=(("msg", f"hello {i} ✓"), ("raw", b"\xff\x00\xfe"), ("k", "a"), ("k", "b")),
            time_ns=123_456_789 + i,
        )
        for i in range(n)
    )
    return LogGroup(logs=logs, topic="topic-1", source="10.0.0.7", tags=(("env", "test"),))


def as_stored(group: LogGroup) -> list[tuple[Any, ...]]:
    """What the emulator must hand back for `group`: values as bytes, group fields per log."""
    return [
        (
            log.time,
            log.time_ns,
            tuple((k, v.encode() if isinstance(v, str) else v) for k, v in log.contents),
            group.topic,
            group.source,
            group.tags,
        )
        for log in group.logs
    ]


def read_back(emu: Emulator, logstore: str) -> list[tuple[Any, ...]]:
    return [
        (log.time, log.time_ns, log.contents, log.topic, log.source, log.tags)
        for log in emu.logs(PROJECT, logstore)
    ]


def make_sync(emu: Emulator, **kwargs: Any) -> PutLogsClient:
    kwargs.setdefault("access_key_id", KEY_ID)
    kwargs.setdefault("access_key_secret", SECRET)
    return PutLogsClient(emu.url, **kwargs)


def make_async(emu: Emulator, **kwargs: Any) -> AsyncPutLogsClient:
    kwargs.setdefault("access_key_id", KEY_ID)
    kwargs.setdefault("access_key_secret", SECRET)
    return AsyncPutLogsClient(emu.url, **kwargs)


FLAVOURS = ["sync", "async"]


def call(
    flavour: str,
    emu: Emulator,
    store: str,
    payload: LogGroup | bytes | None = None,
    **kwargs: Any,
) -> PutLogsResult:
    """One put_logs (a LogGroup; default one sample log) or put_raw (bytes) call with a fresh
    client of the given flavour."""
    body = sample_group(1) if payload is None else payload
    if flavour == "sync":
        with make_sync(emu, **kwargs) as client:
            if isinstance(body, bytes):
                return client.put_raw(PROJECT, store, body)
            return client.put_logs(PROJECT, store, body)

    async def run() -> PutLogsResult:
        async with make_async(emu, **kwargs) as client:
            if isinstance(body, bytes):
                return await client.put_raw(PROJECT, store, body)
            return await client.put_logs(PROJECT, store, body)

    return asyncio.run(run())


SIGNATURES = [
    pytest.param({}, id="v1"),
    pytest.param({"signature_method": "hmac-sha256"}, id="v1-sha256"),
    pytest.param({"signature_version": "v4", "region": REGION}, id="v4"),
]


# ---------------------------------------------------------------------------- success


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("signature", SIGNATURES)
@pytest.mark.parametrize("compression", list(Compression))
def test_put_logs_reads_back_byte_exact(
    fresh_emu: Emulator,
    store: str,
    compression: Compression,
    signature: dict[str, str],
    flavour: str,
) -> None:
    group = sample_group()
    result = call(flavour, fresh_emu, store, group, compression=compression, **signature)
    assert result.status == 200
    assert REQUEST_ID.fullmatch(result.request_id)
    assert read_back(fresh_emu, store) == as_stored(group)
    # The stored (decompressed) body is exactly what our encoder produced.
    assert fresh_emu.raw_batches(PROJECT, store) == [(result.request_id, encode_log_group(group))]
    (summary,) = fresh_emu.requests(PROJECT, store)
    assert summary.compress_type == compression.header_value
    assert summary.auth_version == signature.get("signature_version", "v1")
    if summary.auth_version == "v1":
        method = signature.get("signature_method", "hmac-sha1")
        assert summary.headers["x-log-signaturemethod"] == method


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_put_raw_sends_the_given_bytes(fresh_emu: Emulator, store: str, flavour: str) -> None:
    raw = encode_log_group(sample_group(2))
    call(flavour, fresh_emu, store, raw)
    assert [batch for _, batch in fresh_emu.raw_batches(PROJECT, store)] == [raw]


@pytest.mark.parametrize("signature", SIGNATURES)
def test_sts_token_is_sent_and_accepted(
    fresh_emu: Emulator, store: str, signature: dict[str, str]
) -> None:
    with make_sync(
        fresh_emu,
        access_key_id=TMP_KEY_ID,
        access_key_secret=TMP_SECRET,
        security_token=TOKEN,
        **signature,
    ) as client:
        client.put_logs(PROJECT, store, sample_group(1))
    (summary,) = fresh_emu.requests(PROJECT, store)
    assert summary.outcome == "accepted"
    assert summary.access_key_id == TMP_KEY_ID
    assert summary.headers["x-acs-security-token"] == "<present>"


def test_sts_key_without_its_token_is_unauthorized(fresh_emu: Emulator, store: str) -> None:
    client = make_sync(fresh_emu, access_key_id=TMP_KEY_ID, access_key_secret=TMP_SECRET)
    with client, pytest.raises(SLSError) as info:
        client.put_logs(PROJECT, store, sample_group(1))
    assert info.value.status == 401
    assert classify_exception(info.value) is Outcome.CREDENTIALS


def test_provider_refresh_is_seen_by_the_next_call(fresh_emu: Emulator, store: str) -> None:
    """The STS seam: the provider is asked per call, so rotated credentials apply at once."""
    current = [Credentials(KEY_ID, SECRET)]

    class Rotating:
        def get_credentials(self) -> Credentials:
            return current[0]

    with make_sync(
        fresh_emu, access_key_id=None, access_key_secret=None, credentials_provider=Rotating()
    ) as client:
        client.put_logs(PROJECT, store, sample_group(1))
        current[0] = Credentials(TMP_KEY_ID, TMP_SECRET, TOKEN)
        client.put_logs(PROJECT, store, sample_group(1))
    assert [s.access_key_id for s in fresh_emu.requests(PROJECT, store)] == [KEY_ID, TMP_KEY_ID]


def test_credentials_from_environment(
    fresh_emu: Emulator, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", TMP_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", TMP_SECRET)
    monkeypatch.setenv("ALIBABA_CLOUD_SECURITY_TOKEN", TOKEN)
    with PutLogsClient(fresh_emu.url) as client:
        client.put_logs(PROJECT, store, sample_group(1))
    assert fresh_emu.requests(PROJECT, store)[0].access_key_id == TMP_KEY_ID


def test_hash_key_routes_to_shard_route(fresh_emu: Emulator, store: str) -> None:
    with make_sync(fresh_emu) as client:
        client.put_logs(PROJECT, store, sample_group(1), hash_key="user 42/+=")
    (summary,) = fresh_emu.requests(PROJECT, store)
    assert summary.outcome == "accepted"
    assert summary.path == f"/logstores/{store}/shards/route"
    assert summary.query == "key=user+42%2F%2B%3D"


def test_environment_proxies_are_ignored(
    fresh_emu: Emulator, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy that refuses every connection: the call only succeeds if it is not used.
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with make_sync(fresh_emu) as client:
        assert client.put_logs(PROJECT, store, sample_group(1)).status == 200


def test_explicit_proxy_is_used(fresh_emu: Emulator, store: str) -> None:
    """proxy= works: the emulator accepts absolute-form targets, so it can act as the proxy."""
    with PutLogsClient(
        "http://sls.example.test",
        access_key_id=KEY_ID,
        access_key_secret=SECRET,
        proxy=fresh_emu.url,
    ) as client:
        assert client.put_logs(PROJECT, store, sample_group(1)).status == 200
    assert fresh_emu.requests(PROJECT, store)[0].headers["host"] == f"{PROJECT}.sls.example.test"


# ------------------------------------------------------------------ connection reuse


def connections_used(emu: Emulator, store: str) -> set[str]:
    """The client ends (ip:port) of the TCP connections that carried requests for `store`."""
    return {summary.peer for summary in emu.requests(PROJECT, store)}


def test_sync_calls_reuse_one_connection(fresh_emu: Emulator, store: str) -> None:
    with make_sync(fresh_emu) as client:
        for _ in range(5):
            client.put_logs(PROJECT, store, sample_group(1))
    assert len(fresh_emu.requests(PROJECT, store)) == 5
    assert len(connections_used(fresh_emu, store)) == 1


def test_async_calls_reuse_one_connection(fresh_emu: Emulator, store: str) -> None:
    async def run() -> None:
        async with make_async(fresh_emu) as client:
            for _ in range(5):
                await client.put_logs(PROJECT, store, sample_group(1))

    asyncio.run(run())
    assert len(fresh_emu.requests(PROJECT, store)) == 5
    assert len(connections_used(fresh_emu, store)) == 1


def test_concurrent_calls_stay_within_the_pool_limit(fresh_emu: Emulator, store: str) -> None:
    async def run() -> None:
        async with make_async(fresh_emu, max_connections=2) as client:
            await asyncio.gather(
                *(client.put_logs(PROJECT, store, sample_group(1)) for _ in range(12))
            )

    asyncio.run(run())
    assert len(fresh_emu.requests(PROJECT, store)) == 12
    assert 1 <= len(connections_used(fresh_emu, store)) <= 2


# --------------------------------------------------------------- transport failures


GENEROUS = 5.0  # seconds of slack for a loaded CI machine; the budgets below are far smaller


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_hang_hits_the_total_deadline(fresh_emu: Emulator, store: str, flavour: str) -> None:
    fresh_emu.faults.hang(logstore=store)
    total = 0.5
    started = time.monotonic()
    with pytest.raises(RequestTimeout) as info:
        call(flavour, fresh_emu, store, timeouts=ClientTimeouts(read=30.0, total=total))
    assert time.monotonic() - started < total + GENEROUS
    assert f"PutLogs {PROJECT}/{store}" in str(info.value)
    assert classify_exception(info.value) is Outcome.RETRY
    # No retry: the emulator saw exactly this one request (recorded once it notices we left).
    assert_requests_eventually(fresh_emu, store, 1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_hang_hits_the_read_timeout(fresh_emu: Emulator, store: str, flavour: str) -> None:
    fresh_emu.faults.hang(logstore=store)
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        call(flavour, fresh_emu, store, timeouts=ClientTimeouts(read=0.3, total=30.0))
    assert time.monotonic() - started < 0.3 + GENEROUS


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_connection_closed_mid_request_is_connection_lost(
    fresh_emu: Emulator, store: str, flavour: str
) -> None:
    fresh_emu.faults.close_mid_request(1, logstore=store)
    with pytest.raises(ConnectionLost) as info:
        call(flavour, fresh_emu, store)
    assert classify_exception(info.value) is Outcome.RETRY
    assert [s.outcome for s in fresh_emu.requests(PROJECT, store)] == ["dropped"]


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_server_down_is_connect_error(fresh_emu: Emulator, store: str, flavour: str) -> None:
    fresh_emu.faults.down()
    with pytest.raises(ConnectError) as info:
        call(flavour, fresh_emu, store, timeouts=ClientTimeouts(connect=2.0, total=5.0))
    assert classify_exception(info.value) is Outcome.RETRY
    assert isinstance(info.value.__cause__, Exception)


def assert_requests_eventually(emu: Emulator, store: str, expected: int) -> None:
    """Summaries of abandoned requests are written when the server notices the client left."""
    deadline = time.monotonic() + GENEROUS
    while time.monotonic() < deadline:
        seen = len(emu.requests(PROJECT, store))
        if seen >= expected:
            break
        emu.wait_for_requests(emu.counters().requests + 1, timeout=0.2)
    assert len(emu.requests(PROJECT, store)) == expected


# --------------------------------------------------------------------- SLS errors

ERROR_CODES = [
    (code, outcome)
    for outcome, codes in (
        (
            Outcome.RETRY,
            (
                ErrorCode.InternalServerError,
                ErrorCode.ServerBusy,
                ErrorCode.RequestTimeout,
                ErrorCode.RequestTimeExpired,
            ),
        ),
        (
            Outcome.CREDENTIALS,
            (
                ErrorCode.Unauthorized,
                ErrorCode.SignatureNotMatch,
                ErrorCode.ProjectNotExist,
                ErrorCode.LogStoreNotExist,
            ),
        ),
        (Outcome.THROTTLED, (ErrorCode.WriteQuotaExceed, ErrorCode.ShardWriteQuotaExceed)),
        (
            Outcome.REJECTED,
            (ErrorCode.PostBodyTooLarge, ErrorCode.InvalidLogSize, ErrorCode.PostBodyInvalid),
        ),
    )
    for code in codes
]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("code", "outcome"), ERROR_CODES)
def test_error_status_is_sls_error_and_not_retried(
    fresh_emu: Emulator, store: str, flavour: str, code: ErrorCode, outcome: Outcome
) -> None:
    fresh_emu.faults.fail_next(1, error_code=code, logstore=store)
    with pytest.raises(SLSError) as info:
        call(flavour, fresh_emu, store)
    error = info.value
    assert (error.status, error.error_code) == (DEFAULT_STATUS[code], code)
    (summary,) = fresh_emu.requests(PROJECT, store)  # exactly one request: no retries
    assert error.request_id == summary.request_id
    assert REQUEST_ID.fullmatch(error.request_id)
    assert classify_exception(error) is outcome
    assert f"PutLogs {PROJECT}/{store}" in str(error)


@pytest.mark.parametrize("method", ["hmac-sha1", "hmac-sha256"])
def test_real_signature_failure(fresh_emu: Emulator, store: str, method: str) -> None:
    client = make_sync(fresh_emu, access_key_secret="wrong-secret", signature_method=method)
    with client, pytest.raises(SLSError) as info:
        client.put_logs(PROJECT, store, sample_group(1))
    assert (info.value.status, info.value.error_code) == (401, "SignatureNotMatch")
    assert len(fresh_emu.requests(PROJECT, store)) == 1


# ------------------------------------------------------------------------- secrets


def test_no_secret_in_repr_errors_or_logs(
    fresh_emu: Emulator, store: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx INFO lines and httpcore DEBUG traces included
    errors: list[ShipError] = []
    client = make_sync(
        fresh_emu, access_key_id=TMP_KEY_ID, access_key_secret=TMP_SECRET, security_token=TOKEN
    )
    with client:
        client.put_logs(PROJECT, store, sample_group(1))
        fresh_emu.faults.fail_next(1, error_code=ErrorCode.Unauthorized, logstore=store)
        fresh_emu.faults.close_mid_request(1, logstore=store)
        for _ in range(2):
            with pytest.raises(ShipError) as info:
                client.put_logs(PROJECT, store, sample_group(1))
            errors.append(info.value)
        texts = [repr(client), str(client)]
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    texts += [str(e.__cause__) for e in errors if e.__cause__ is not None]
    texts.append(caplog.text)
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # the capture worked
    for text in texts:
        for secret in (TMP_SECRET, TOKEN):
            assert secret not in text


# ---------------------------------------------------------------- concurrency (async)


def test_async_concurrent_calls_all_land(fresh_emu: Emulator, store: str) -> None:
    groups = [sample_group(2) for _ in range(20)]

    async def run() -> list[str]:
        async with make_async(fresh_emu, max_connections=4) as client:
            results = await asyncio.gather(*(client.put_logs(PROJECT, store, g) for g in groups))
        return [r.request_id for r in results]

    ids = asyncio.run(run())
    assert len(set(ids)) == 20
    assert fresh_emu.count(PROJECT, store) == 40


def test_sync_client_is_thread_safe(fresh_emu: Emulator, store: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with make_sync(fresh_emu, max_connections=4) as client, ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: client.put_logs(PROJECT, store, sample_group(1)), range(16))
        )
    assert all(r.status == 200 for r in results)
    assert fresh_emu.count(PROJECT, store) == 16
