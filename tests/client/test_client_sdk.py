"""SdkPutLogsClient (official aliyun-log-python-sdk) against the emulator, through HTTP_PROXY.

The SDK dials ``http://{project}.sls.example.test``; with ``HTTP_PROXY`` pointing at the emulator,
requests sends the absolute-form request line there (sls-protocol.md §1). The mapping of SDK
failures must match the native clients'; the SDK's own 10 x 1 s retry loop is bounded with
``sdk_retries=False`` except in the one test (marked slow) that documents it.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from client_support import KEY_ID, PROJECT, REGION, SECRET, TMP_KEY_ID, TMP_SECRET, TOKEN

from yai_spool.emulator import Emulator
from yai_spool.sls.client import ClientTimeouts, SdkPutLogsClient
from yai_spool.sls.encoding import encode_log_group
from yai_spool.sls.errors import (
    ConnectError,
    ConnectionLost,
    ErrorCode,
    Outcome,
    RequestTimeout,
    SLSError,
    classify_exception,
)
from yai_spool.sls.model import Log, LogGroup

ENDPOINT = "sls.example.test"
_names = itertools.count(1)


@pytest.fixture
def store() -> str:
    return f"sdk-{next(_names):04d}"


@pytest.fixture
def proxied(fresh_emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The emulator as the SDK's HTTP proxy (requests reads the proxy env per request)."""
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fresh_emu.url)
    return fresh_emu


def sdk_client(**kwargs: Any) -> SdkPutLogsClient:
    kwargs.setdefault("access_key_id", KEY_ID)
    kwargs.setdefault("access_key_secret", SECRET)
    return SdkPutLogsClient(ENDPOINT, **kwargs)


def group_of(n: int = 3) -> LogGroup:
    logs = tuple(
        Log(
            time=1_700_000_000 + i,
            contents=(("msg", f"hello {i} ✓"), ("raw", b"\xff\x00\xfe"), ("k", "a"), ("k", "b")),
            time_ns=987_654_321 - i,
        )
        for i in range(n)
    )
    return LogGroup(logs=logs, topic="topic-1", source="10.0.0.7", tags=(("env", "test"),))


def test_sdk_put_logs_maps_every_field(proxied: Emulator, store: str) -> None:
    group = group_of()
    with sdk_client() as client:
        result = client.put_logs(PROJECT, store, group)
    assert result.status == 200
    (stored_id, raw) = proxied.raw_batches(PROJECT, store)[0]
    assert stored_id == result.request_id
    # With non-zero time_ns the SDK's LogGroup is byte-identical to ours.
    assert raw == encode_log_group(group)


def test_sdk_quirks_empty_source_stays_empty_and_time_ns_is_filled(
    proxied: Emulator, store: str
) -> None:
    group = LogGroup(logs=(Log(time=1_700_000_000, contents=(("msg", "x"),)),))
    with sdk_client() as client:
        client.put_logs(PROJECT, store, group)
    (log,) = proxied.logs(PROJECT, store)
    assert log.source == ""  # LogClient(source="") keeps the SDK from inserting the host IP
    assert log.time_ns is not None  # the SDK always writes Time_ns (current sub-second ns)


def test_sdk_put_raw_is_byte_exact(proxied: Emulator, store: str) -> None:
    raw = encode_log_group(LogGroup(logs=(Log(time=1, contents=(("msg", "x"),)),)))
    with sdk_client() as client:
        client.put_raw(PROJECT, store, raw)
    assert [batch for _, batch in proxied.raw_batches(PROJECT, store)] == [raw]


def test_sdk_v4_sts_and_hash_key(proxied: Emulator, store: str) -> None:
    with sdk_client(
        access_key_id=TMP_KEY_ID,
        access_key_secret=TMP_SECRET,
        security_token=TOKEN,
        signature_version="v4",
        region=REGION,
    ) as client:
        client.put_logs(PROJECT, store, group_of(1), hash_key="user 42")
    (summary,) = proxied.requests(PROJECT, store)
    assert (summary.outcome, summary.auth_version) == ("accepted", "v4")
    assert summary.access_key_id == TMP_KEY_ID
    assert summary.path == f"/logstores/{store}/shards/route"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (ErrorCode.WriteQuotaExceed, Outcome.THROTTLED),
        (ErrorCode.Unauthorized, Outcome.CREDENTIALS),
        (ErrorCode.PostBodyInvalid, Outcome.REJECTED),
        (ErrorCode.InternalServerError, Outcome.RETRY),
    ],
)
def test_sdk_errors_map_like_the_native_client(
    proxied: Emulator, store: str, code: ErrorCode, outcome: Outcome
) -> None:
    proxied.faults.fail_next(1, error_code=code, logstore=store)
    with sdk_client(sdk_retries=False) as client, pytest.raises(SLSError) as info:
        client.put_logs(PROJECT, store, group_of(1))
    (summary,) = proxied.requests(PROJECT, store)  # one attempt: the SDK loop is bounded
    assert info.value.error_code == code
    assert info.value.status == summary.status
    assert info.value.request_id == summary.request_id
    assert classify_exception(info.value) is outcome


def test_sdk_does_not_retry_4xx_even_with_its_loop(proxied: Emulator, store: str) -> None:
    proxied.faults.fail_next(1, error_code=ErrorCode.WriteQuotaExceed, logstore=store)
    with sdk_client() as client, pytest.raises(SLSError):
        client.put_logs(PROJECT, store, group_of(1))
    assert len(proxied.requests(PROJECT, store)) == 1


@pytest.mark.slow
def test_sdk_retry_loop_makes_ten_attempts_on_5xx(proxied: Emulator, store: str) -> None:
    """Documents the SDK behaviour: 10 attempts, 1 s sleep after each (~10 s)."""
    proxied.faults.fail_next(None, error_code=ErrorCode.ServerBusy, logstore=store)
    started = time.monotonic()
    with sdk_client() as client, pytest.raises(SLSError) as info:
        client.put_logs(PROJECT, store, group_of(1))
    assert time.monotonic() - started >= 10.0  # ten time.sleep(1) calls, the last included
    assert len(proxied.requests(PROJECT, store)) == 10
    assert classify_exception(info.value) is Outcome.RETRY


def test_sdk_transport_errors(proxied: Emulator, store: str) -> None:
    with sdk_client(sdk_retries=False, timeouts=ClientTimeouts(connect=2.0, read=0.3)) as client:
        proxied.faults.close_mid_request(1, logstore=store)
        with pytest.raises(ConnectionLost):
            client.put_logs(PROJECT, store, group_of(1))

        proxied.faults.hang(n=1, logstore=store)
        with pytest.raises(RequestTimeout):
            client.put_logs(PROJECT, store, group_of(1))

        proxied.faults.down()
        with pytest.raises(ConnectError) as info:
            client.put_logs(PROJECT, store, group_of(1))
    assert classify_exception(info.value) is Outcome.RETRY


def test_sdk_repr_and_errors_hold_no_secret(proxied: Emulator, store: str) -> None:
    proxied.faults.fail_next(1, error_code=ErrorCode.Unauthorized, logstore=store)
    client = sdk_client(
        access_key_id=TMP_KEY_ID,
        access_key_secret=TMP_SECRET,
        security_token=TOKEN,
        sdk_retries=False,
        proxy=f"http://u:proxy-pw-xyz@127.0.0.1:{proxied.port}",
    )
    with client, pytest.raises(SLSError) as info:
        client.put_logs(PROJECT, store, group_of(1))
    for text in (repr(client), str(info.value), repr(info.value)):
        for secret in (TMP_SECRET, TOKEN, "proxy-pw-xyz"):
            assert secret not in text
