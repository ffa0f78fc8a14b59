"""The PutLogs clients of the conformance suite, behind one small ``Sender`` interface.

Owns: the fake credentials the conformance emulator knows, the sender registry
(``SENDERS``), and what each sender can carry (``Capabilities``) and must put on the wire
(``Wire``). Fixtures live in conftest.py; the cases in test_conformance.py.

Each sender delivers one ``LogGroup`` through a real client over real HTTP on 127.0.0.1 and
raises :class:`SendFailed` (HTTP status, errorCode, request id) when the emulator refuses it:

- ``sdk-*``: the official ``aliyun.log.LogClient.put_logs`` (V1/V4, with and without an STS
  token, lz4 or uncompressed). It reaches the emulator through ``HTTP_PROXY`` with the fake
  endpoint ``sls.example.test``: ``requests`` reads the proxy environment on every request.
- ``producer-*``: the official Rust ``aliyun-log-producer`` (zstd), also through
  ``HTTP_PROXY``. Its reqwest client reads the proxy environment when a ``Producer`` is
  *constructed*, not once per process (checked: two producers in one process, built under
  two different ``HTTP_PROXY`` values, each deliver to their own emulator), so it runs
  in-process; every send builds a fresh ``Producer`` while the test's proxy env is set.
- ``client-*`` / ``async-*``: our ``PutLogsClient`` / ``AsyncPutLogsClient`` dialling the
  emulator's IP endpoint directly (they ignore proxy variables by design); ``-sha256`` ones
  sign V1 with ``signature_method="hmac-sha256"``.
- ``node-*``: the official Node.js clients, one ``node`` process per send
  (``node/put_logs.js``, see node_support.py): ``node-gateway-*`` is
  ``@alicloud/sls20201230`` + ``@alicloud/gateway-sls`` (V1 hmac-sha256 or V4; lz4, deflate
  or gzip; chunked body without Content-Length), ``node-log-*`` is ``@alicloud/log``
  (V1 hmac-sha1, uncompressed), ``node-aliyun-sdk-*`` is ``aliyun-sdk`` (V1 hmac-sha1,
  deflate). They dial ``{project}.sls.example.test:PORT``, which a preloaded resolver maps
  to 127.0.0.1; they are skipped (with the reason) only where Node.js or its packages are
  not installed.

Invariants: every sender is closed by the fixture that made it (no socket outlives a test);
no sender retries (the SDK does not retry 4xx, the producer gets ``max_attempts=1``, ours
never retry), so one refused send is exactly one request at the emulator.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

import pytest
from node_support import TEST_DOMAIN, node_skip_reason, run_node

from yai_spool.sls.client import AsyncPutLogsClient, PutLogsClient
from yai_spool.sls.errors import SLSError
from yai_spool.sls.model import LogGroup

ACCESS_KEY_ID = "LTAI5tConformanceKey"
# Emulator-only fakes.
ACCESS_KEY_SECRET = "ConformanceSecret-do-not-leak"
STS_KEY_ID = "STS.ConformanceTmpKey"
STS_SECRET = "ConformanceStsSecret-do-not-leak"
STS_TOKEN = "ConformanceStsToken-do-not-leak"
REGION = "cn-hangzhou"
FAKE_ENDPOINT = "sls.example.test"
PACK_ID_TAG = "__pack_id__"


class SendFailed(Exception):
    """The emulator refused the request: its HTTP status, errorCode and request id."""

    # status is None when the client's API does not expose it (@alicloud/log); the emulator's
    # request summary still records it, and the tests check it there.
    def __init__(self, status: int | None, error_code: str, request_id: str, detail: str) -> None:
        super().__init__(f"{status} {error_code}: {detail} (request id {request_id or '-'})")
        self.status = status
        self.error_code = error_code
        self.request_id = request_id


@dataclass(frozen=True)
class Capabilities:
    """What a client's public API can express; every ``False`` is a documented limitation."""

    bytes_values: bool = True  # non-UTF-8 content values (the producer takes str only)
    tags: bool = True  # caller-chosen LogTags (the producer has no tags argument)
    # False: the client writes Time_ns even when the log has none (or 0), inventing the
    # current sub-second nanoseconds (SDK LogItem); any given non-zero value is kept.
    exact_time_ns: bool = True
    # True: one send is one request carrying the group as built, so log order and the
    # decompressed body bytes can be compared; False: the producer re-batches.
    one_request: bool = True
    added_tags: tuple[str, ...] = ()  # tags the client adds on its own
    duplicate_keys: bool = True  # False: contents are a mapping (@alicloud/log)
    time_ns: bool = True  # False: the client's schema has no Time_ns (aliyun-sdk)
    # True: the client encodes a LogGroup exactly as ours does (field order, Topic/Source
    # written even when empty), so the decompressed body can be compared byte for byte;
    # False: compared decoded, field by field (still every byte of every value).
    same_encoding: bool = True
    max_body_bytes: int | None = None  # a client-side size limit below the service's


@dataclass(frozen=True)
class Wire:
    """What the emulator must record for every request of this sender (checks the label)."""

    auth_version: str  # "v1" | "v4"
    access_key_id: str
    compress_type: str | None  # None: no x-log-compresstype header (uncompressed)
    sts: bool  # x-acs-security-token present
    signature_method: str | None = "hmac-sha1"  # x-log-signaturemethod; None for V4


class Sender(Protocol):
    name: str
    caps: Capabilities
    wire: Wire

    def send(self, project: str, logstore: str, group: LogGroup) -> None: ...

    def close(self) -> None: ...


class Keys(NamedTuple):
    """The access key a sender signs with (resolved once, by :func:`build_sender`)."""

    key_id: str
    secret: str


def _keys(sts: bool, key_id: str | None, secret: str | None) -> Keys:
    """The good key for ``sts`` (permanent or temporary), with either half overridden."""
    return Keys(
        key_id or (STS_KEY_ID if sts else ACCESS_KEY_ID),
        secret or (STS_SECRET if sts else ACCESS_KEY_SECRET),
    )


# -- the official Python SDK -------------------------------------------------------------


class SdkSender:
    """``aliyun.log.LogClient.put_logs`` exactly as an SDK user calls it."""

    caps = Capabilities(exact_time_ns=False)

    def __init__(
        self, name: str, *, keys: Keys, auth_version: str, sts: bool, compress: bool
    ) -> None:
        from aliyun.log import LogClient

        self.name = name
        self.compress = compress
        kid, sec = keys
        method = None if auth_version == "v4" else "hmac-sha1"
        self.wire = Wire(auth_version, kid, "lz4" if compress else None, sts, method)
        self._client = LogClient(
            FAKE_ENDPOINT,
            kid,
            sec,
            securityToken=STS_TOKEN if sts else None,
            # "" keeps an empty LogGroup.Source empty (None would substitute the host IP,
            # found by a UDP-connect DNS lookup of the fake endpoint).
            source="",
            auth_version=auth_version,
            region=REGION,
        )

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        from aliyun.log import LogException, LogItem, PutLogsRequest

        items = [
            LogItem(timestamp=log.time, contents=list(log.contents), time_nano_part=log.time_ns)
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
            raise SendFailed(
                exc.get_resp_status(),
                exc.get_error_code(),
                exc.get_request_id(),
                exc.get_error_message(),
            ) from None

    def close(self) -> None:
        # LogClient has no close(); its requests.Session holds the keep-alive socket.
        self._client._session.close()


# -- the official Rust producer ----------------------------------------------------------


class ProducerSender:
    """``aliyun_log_producer``: enqueue every log, close (waits for delivery and callbacks)."""

    caps = Capabilities(
        bytes_values=False, tags=False, one_request=False, added_tags=(PACK_ID_TAG,)
    )

    def __init__(self, name: str, *, keys: Keys, sts: bool) -> None:
        self.name = name
        self.sts = sts
        self.key_id, self.secret = keys
        self.wire = Wire("v1", self.key_id, "zstd", sts)

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        from aliyun_log_producer import Log, Producer, ProducerConfig

        config = ProducerConfig(
            endpoint=f"http://{FAKE_ENDPOINT}",
            access_key_id=self.key_id,
            access_key_secret=self.secret,
            security_token=STS_TOKEN if self.sts else None,
            compression="zstd",
            linger=0.01,  # seal the batch almost at once: the test waits in close()
            max_attempts=1,  # a refusal must surface now, not after 10 jittered retries
        )
        results: list[Any] = []
        with Producer(config) as producer:  # __exit__ = close(): delivery + callbacks done
            writer = producer.writer(project, logstore)
            for log in group.logs:
                contents = []
                for key, value in log.contents:
                    if not isinstance(value, str):
                        raise TypeError("the producer takes str values only (caps.bytes_values)")
                    contents.append((key, value))
                writer.send(
                    Log(contents, time=log.time, time_ns=log.time_ns),
                    topic=group.topic,
                    source=group.source,
                    on_delivery=results.append,
                )
        assert len(results) == len(group.logs), "the producer did not report every log"
        errors = [e for e in results if e is not None]
        if errors:
            first = errors[0]
            raise SendFailed(
                first.http_status,
                first.error_code or first.kind,
                first.request_id or "",
                first.message,
            )

    def close(self) -> None:
        """Nothing held between sends: each send closes its own Producer."""


# -- ours --------------------------------------------------------------------------------


def _our_kwargs(
    *, keys: Keys, sig: str, method: str, sts: bool, compression: str
) -> tuple[dict[str, Any], Wire]:
    kid, sec = keys
    kwargs: dict[str, Any] = {
        "access_key_id": kid,
        "access_key_secret": sec,
        "security_token": STS_TOKEN if sts else None,
        "compression": compression,
        "signature_version": sig,
        "signature_method": method,
        "region": REGION if sig == "v4" else None,
    }
    wire = Wire(
        sig,
        kid,
        None if compression == "none" else compression,
        sts,
        None if sig == "v4" else method,
    )
    return kwargs, wire


class ClientSender:
    """Our blocking ``PutLogsClient`` (one client, reused across sends)."""

    caps = Capabilities()

    def __init__(self, name: str, url: str, **options: Any) -> None:
        self.name = name
        kwargs, self.wire = _our_kwargs(**options)
        self._client = PutLogsClient(url, **kwargs)

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        try:
            self._client.put_logs(project, logstore, group)
        except SLSError as exc:
            raise SendFailed(exc.status, exc.error_code, exc.request_id, exc.message) from None

    def close(self) -> None:
        self._client.close()


class AsyncClientSender:
    """Our ``AsyncPutLogsClient``, one event loop and one client per send."""

    caps = Capabilities()

    def __init__(self, name: str, url: str, **options: Any) -> None:
        self.name = name
        self._url = url
        self._kwargs, self.wire = _our_kwargs(**options)

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        async def main() -> None:
            async with AsyncPutLogsClient(self._url, **self._kwargs) as client:
                await client.put_logs(project, logstore, group)

        try:
            asyncio.run(main())
        except SLSError as exc:
            raise SendFailed(exc.status, exc.error_code, exc.request_id, exc.message) from None

    def close(self) -> None:
        """Nothing held between sends: each send closes its own client."""


# -- the official Node.js clients ---------------------------------------------------------


class NodeSender:
    """One official Node.js client; each send is one ``node put_logs.js`` process."""

    _CAPS: ClassVar[dict[str, Capabilities]] = {
        # protobufjs with @alicloud/log's sls.proto: Value is a proto string.
        "gateway": Capabilities(bytes_values=False),
        # content is an object (no duplicate keys); Topic/Source omitted when empty.
        "log": Capabilities(bytes_values=False, duplicate_keys=False, same_encoding=False),
        # pomelo-protobuf schema without Time_ns or LogTags in its API; refuses > 3 MiB
        # (raw protobuf) before sending, and writes Topic/Source only when given.
        "aliyun-sdk": Capabilities(
            bytes_values=False,
            tags=False,
            time_ns=False,
            same_encoding=False,
            max_body_bytes=3 * 1024 * 1024,
        ),
    }

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client: str,
        sig: str,
        sts: bool,
        compression: str | None,
        keys: Keys,
    ) -> None:
        reason = node_skip_reason()
        if reason is not None:
            pytest.skip(f"{name}: {reason}")
        self.name = name
        self.caps = self._CAPS[client]
        self.key_id, self.secret = keys
        self.sts = sts
        self.client, self.sig, self.compression = client, sig, compression
        method = None if sig == "v4" else ("hmac-sha256" if client == "gateway" else "hmac-sha1")
        self.wire = Wire(sig, self.key_id, compression, sts, method)
        self.endpoint = f"{TEST_DOMAIN}:{url.rsplit(':', 1)[1]}"
        self.extra_headers: dict[str, str] = {}

    def job(self, project: str, logstore: str, group: LogGroup) -> dict[str, Any]:
        """The put_logs.js document for one send (values must be str: caps.bytes_values)."""
        logs = []
        for log in group.logs:
            contents = []
            for key, value in log.contents:
                if not isinstance(value, str):
                    raise TypeError(f"{self.name} takes str values only (caps.bytes_values)")
                contents.append([key, value])
            logs.append({"time": log.time, "timeNs": log.time_ns, "contents": contents})
        return {
            "client": self.client,
            "endpoint": self.endpoint,
            "project": project,
            "logstore": logstore,
            "accessKeyId": self.key_id,
            "accessKeySecret": self.secret,
            "securityToken": STS_TOKEN if self.sts else None,
            "signatureVersion": self.sig,
            "region": REGION if self.sig == "v4" else None,
            # The gateway compresses with lz4 unless told otherwise; PutLogs needs a
            # Content-Type, which it sends only when the caller sets one for a binary body.
            "compressType": self.compression,
            "contentType": "application/x-protobuf",
            "headers": self.extra_headers,
            "group": {
                "topic": group.topic,
                "source": group.source,
                "tags": [list(tag) for tag in group.tags],
                "logs": logs,
            },
        }

    def send(self, project: str, logstore: str, group: LogGroup) -> None:
        self.send_job(self.job(project, logstore, group))

    def send_job(self, job: dict[str, Any]) -> None:
        answer = run_node("put_logs.js", job, resolve_test_domain=True)
        if not answer["ok"]:
            raise SendFailed(
                answer["status"], answer["code"], answer["requestId"], answer["message"]
            )

    def close(self) -> None:
        """Nothing held between sends: each send is its own process, waited for."""


# -- the registry ------------------------------------------------------------------------


def _entry(
    label: str, sts: bool, codec: str, options: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """One ``SENDERS`` row: the id ``{label}[-sts]-{codec}`` and the sender's options."""
    return f"{label}{'-sts' if sts else ''}-{codec}", {**options, "sts": sts}


def _sdk(auth_version: str, sts: bool, compress: bool) -> tuple[str, dict[str, Any]]:
    options = {"kind": "sdk", "auth_version": auth_version, "compress": compress}
    return _entry(f"sdk-{auth_version}", sts, "lz4" if compress else "none", options)


def _ours(
    kind: str, sig: str, sts: bool, compression: str, method: str = "hmac-sha1"
) -> tuple[str, dict[str, Any]]:
    label = f"{kind}-{sig}" + ("-sha256" if method == "hmac-sha256" else "")
    options = {"kind": kind, "sig": sig, "method": method, "compression": compression}
    return _entry(label, sts, compression, options)


def _node(client: str, sig: str, sts: bool, compression: str | None) -> tuple[str, dict[str, Any]]:
    label = f"node-{client}-" + ("v1-sha256" if client == "gateway" and sig == "v1" else sig)
    options = {"kind": "node", "client": client, "sig": sig, "compression": compression}
    return _entry(label, sts, compression or "none", options)


#: sender id -> construction options. The official SDK runs the full V1/V4 x STS x
#: lz4/uncompressed product; the producer zstd with and without STS; ours a spread of
#: signature (V1 hmac-sha1, V1 hmac-sha256, V4), STS and all four compressions over both
#: twins; the Node.js clients each signature, compression and STS variant they offer.
SENDERS: dict[str, dict[str, Any]] = dict(
    [
        *(_sdk(v, s, c) for v in ("v1", "v4") for s in (False, True) for c in (True, False)),
        ("producer-zstd", {"kind": "producer", "sts": False}),
        ("producer-sts-zstd", {"kind": "producer", "sts": True}),
        _ours("client", "v1", False, "lz4"),
        _ours("client", "v1", False, "zstd"),
        _ours("client", "v1", False, "none"),
        _ours("client", "v4", False, "deflate"),
        _ours("client", "v4", True, "lz4"),
        _ours("async", "v1", False, "lz4"),
        _ours("async", "v4", False, "zstd"),
        _ours("async", "v1", True, "none"),
        _ours("client", "v1", False, "lz4", "hmac-sha256"),
        _ours("client", "v1", True, "deflate", "hmac-sha256"),
        _ours("async", "v1", False, "zstd", "hmac-sha256"),
        _node("gateway", "v1", False, "lz4"),
        _node("gateway", "v1", False, "deflate"),
        _node("gateway", "v1", False, "gzip"),
        _node("gateway", "v1", True, "lz4"),
        _node("gateway", "v4", False, "lz4"),
        _node("gateway", "v4", True, "deflate"),
        _node("log", "v1", False, None),
        _node("log", "v1", True, None),
        _node("aliyun-sdk", "v1", False, "deflate"),
        _node("aliyun-sdk", "v1", True, "deflate"),
    ]
)
SENDER_IDS = list(SENDERS)
OUR_SENDER_IDS = [s for s in SENDER_IDS if SENDERS[s]["kind"] in ("client", "async")]
OFFICIAL_SENDER_IDS = [s for s in SENDER_IDS if s not in OUR_SENDER_IDS]
NODE_SENDER_IDS = [s for s in SENDER_IDS if SENDERS[s]["kind"] == "node"]


def build_sender(
    sender_id: str, url: str, *, key_id: str | None = None, secret: str | None = None
) -> Sender:
    """The sender named ``sender_id``; ``key_id``/``secret`` override the good credentials."""
    options = dict(SENDERS[sender_id])
    kind = options.pop("kind")
    options["keys"] = _keys(options["sts"], key_id, secret)
    if kind == "sdk":
        return SdkSender(sender_id, **options)
    if kind == "producer":
        return ProducerSender(sender_id, **options)
    if kind == "node":
        return NodeSender(sender_id, url, **options)
    cls = ClientSender if kind == "client" else AsyncClientSender
    return cls(sender_id, url, **options)
