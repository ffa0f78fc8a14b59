"""The four PutLogs clients of the conformance suite, behind one small interface.

Each ``Sender`` delivers one ``LogGroup`` to the emulator through a real client over real
HTTP on 127.0.0.1 and raises ``SendFailed(error_code)`` when the emulator refuses it:

- ``sdk``: the official ``aliyun.log.LogClient.put_logs`` (V1/V4, with and without an STS
  token, lz4 or uncompressed), reaching the emulator as an HTTP proxy (sls-protocol.md §1).
- ``producer``: the official Rust ``aliyun-log-producer`` (zstd), also through the proxy.
- ``client``/``async_client``: our ``PutLogsClient``/``AsyncPutLogsClient`` dialling the
  emulator's IP endpoint directly.

Capabilities differ (the producer takes ``str`` values only and no tags; the SDK always
writes ``Time_ns``), so each sender says what it can carry and the tests compare exactly
what was sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from tests.conftest import ACCESS_KEY_ID, ACCESS_KEY_SECRET, STS_TOKEN
from yai_spool.client import AsyncPutLogsClient, PutLogsClient
from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.model import LogGroup

STS_KEY_ID = "STS.tempKeyId"
STS_SECRET = "StsSecret-do-not-leak"  # noqa: S105 - emulator-only fake
FAKE_ENDPOINT = "sls.example.test"


class SendFailed(Exception):
    """The emulator refused the request; ``error_code`` is the SLS errorCode it answered."""

    def __init__(self, error_code: str, detail: str = "") -> None:
        super().__init__(f"{error_code}: {detail}")
        self.error_code = error_code


@dataclass(frozen=True)
class Capabilities:
    bytes_values: bool = True
    tags: bool = True
    exact_time_ns: bool = True  # False: the client invents Time_ns when absent/0


class Sender(Protocol):
    name: str
    caps: Capabilities

    def send(self, project: str, logstore: str, group: LogGroup) -> None: ...


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(
        access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET, STS_KEY_ID: STS_SECRET},
        sts_tokens={STS_TOKEN: STS_KEY_ID},
    )
    with Emulator(config) as emu:
        yield emu


@pytest.fixture
def proxy_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the official clients' plain-HTTP traffic to the emulator (proxy mode)."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", emulator.url)
    monkeypatch.setenv("http_proxy", emulator.url)


# -- the official SDK ----------------------------------------------------------------------


class SdkSender:
    caps = Capabilities(exact_time_ns=False)

    def __init__(
        self,
        *,
        auth_version: str = "v1",
        sts: bool = False,
        compress: bool = True,
        secret: str | None = None,
        key_id: str | None = None,
    ) -> None:
        from aliyun.log import LogClient

        self.name = f"sdk-{auth_version}{'-sts' if sts else ''}{'-lz4' if compress else '-raw'}"
        self.compress = compress
        kid = key_id or (STS_KEY_ID if sts else ACCESS_KEY_ID)
        sec = secret or (STS_SECRET if sts else ACCESS_KEY_SECRET)
        self._client = LogClient(
            FAKE_ENDPOINT,
            kid,
            sec,
            securityToken=STS_TOKEN if sts else None,
            source="10.0.0.1",  # avoid the SDK's DNS-based source detection
            auth_version=auth_version,
            region="cn-hangzhou",
        )

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        from aliyun.log import LogException, LogItem, PutLogsRequest

        items = [
            LogItem(
                timestamp=log.time,
                time_nano_part=log.time_ns,
                contents=list(log.contents),
            )
            for log in group.logs
        ]
        request = PutLogsRequest(
            project,
            logstore,
            group.topic,
            group.source,
            items,
            logtags=list(group.tags) or None,
            compress=self.compress,
        )
        try:
            self._client.put_logs(request)
        except LogException as exc:
            raise SendFailed(exc.get_error_code(), exc.get_error_message()) from None


# -- the official Rust producer ------------------------------------------------------------


class ProducerSender:
    name = "producer-zstd"
    caps = Capabilities(bytes_values=False, tags=False)

    def __init__(self, *, secret: str = ACCESS_KEY_SECRET, key_id: str = ACCESS_KEY_ID) -> None:
        self.secret, self.key_id = secret, key_id

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        from aliyun_log_producer import Log, Producer, ProducerConfig

        config = ProducerConfig(
            endpoint=f"http://{FAKE_ENDPOINT}",
            access_key_id=self.key_id,
            access_key_secret=self.secret,
            compression="zstd",
            linger=0.1,
            max_attempts=1,  # one attempt: a refusal must surface, not be retried for minutes
        )
        results: list[Any] = []
        done = threading.Event()
        expected = len(group.logs)

        def on_delivery(error: Any) -> None:
            results.append(error)
            if len(results) == expected:
                done.set()

        with Producer(config) as producer:
            writer = producer.writer(project, logstore)
            for log in group.logs:
                contents = [(k, v if isinstance(v, str) else v.decode()) for k, v in log.contents]
                writer.send(
                    Log(contents, time=log.time, time_ns=log.time_ns),
                    topic=group.topic,
                    source=group.source,
                    on_delivery=on_delivery,
                )
            producer.flush()
            assert done.wait(60), "producer did not report every delivery"
        errors = [e for e in results if e is not None]
        if errors:
            raise SendFailed(errors[0].error_code or errors[0].kind, errors[0].message)


# -- ours ----------------------------------------------------------------------------------


class ClientSender:
    caps = Capabilities()

    def __init__(self, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("access_key_id", ACCESS_KEY_ID)
        kwargs.setdefault("access_key_secret", ACCESS_KEY_SECRET)
        self.name = "client-" + str(kwargs.get("compression", "lz4"))
        self._client = PutLogsClient(url, **kwargs)

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        from yai_spool.errors import SLSError

        try:
            self._client.put_logs(project, logstore, group)
        except SLSError as exc:
            raise SendFailed(exc.error_code, exc.message) from None


class AsyncClientSender:
    caps = Capabilities()

    def __init__(self, url: str, **kwargs: Any) -> None:
        kwargs.setdefault("access_key_id", ACCESS_KEY_ID)
        kwargs.setdefault("access_key_secret", ACCESS_KEY_SECRET)
        self.name = "async-client-" + str(kwargs.get("compression", "lz4"))
        self._url, self._kwargs = url, kwargs

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        from yai_spool.errors import SLSError

        async def main() -> None:
            async with AsyncPutLogsClient(self._url, **self._kwargs) as client:
                await client.put_logs(project, logstore, group)

        try:
            asyncio.run(main())
        except SLSError as exc:
            raise SendFailed(exc.error_code, exc.message) from None


SENDER_IDS = [
    "sdk-v1-lz4",
    "sdk-v1-raw",
    "sdk-v4-lz4",
    "sdk-v1-sts",
    "sdk-v4-sts",
    "producer-zstd",
    "client-lz4",
    "client-zstd",
    "client-none",
    "client-v4-deflate",
    "async-client-lz4",
    "async-client-v4-zstd",
]


def make_sender(sender_id: str, emulator: Emulator, **overrides: Any) -> Sender:
    """Build the sender named ``sender_id``; overrides change key id / secret for negatives."""
    match sender_id:
        case "sdk-v1-lz4":
            return SdkSender(**overrides)
        case "sdk-v1-raw":
            return SdkSender(compress=False, **overrides)
        case "sdk-v4-lz4":
            return SdkSender(auth_version="v4", **overrides)
        case "sdk-v1-sts":
            return SdkSender(sts=True, **overrides)
        case "sdk-v4-sts":
            return SdkSender(auth_version="v4", sts=True, **overrides)
        case "producer-zstd":
            return ProducerSender(**overrides)
        case "client-lz4" | "client-zstd" | "client-none":
            return ClientSender(emulator.url, compression=sender_id.split("-")[1], **_ours(overrides))
        case "client-v4-deflate":
            return ClientSender(
                emulator.url,
                compression="deflate",
                signature_version="v4",
                region="cn-hangzhou",
                **_ours(overrides),
            )
        case "async-client-lz4":
            return AsyncClientSender(emulator.url, **_ours(overrides))
        case "async-client-v4-zstd":
            return AsyncClientSender(
                emulator.url,
                compression="zstd",
                signature_version="v4",
                region="cn-hangzhou",
                **_ours(overrides),
            )
    raise ValueError(sender_id)


def _ours(overrides: dict[str, Any]) -> dict[str, Any]:
    renamed = {"secret": "access_key_secret", "key_id": "access_key_id"}
    return {renamed.get(k, k): v for k, v in overrides.items()}
