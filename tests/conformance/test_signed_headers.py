"""Which headers a V1 signature covers, and the Node.js gateway's request shape, against the
emulator over real HTTP.

Extra ``x-log-*``/``x-acs-*`` headers (issue 10, item 4): our signer, the official Python
SDK's ``AuthV1`` and the Node.js ``@alicloud/gateway-sls`` all sign them, lower-cased and
sorted into CanonicalizedLOGHeaders, so the emulator verifies them and a value changed in
transit fails. The one disagreement between the official clients is ``x-log-meta-*``: the
Python SDK leaves it out, the Node.js clients sign it; the emulator accepts either form
(``EmulatorConfig.v1_meta_headers="either"``), so both clients pass.

The gateway's request shape: it sends no Content-Type for a binary body unless the caller
sets one (``MissingContentType`` by default, accepted with ``missing_content_type="accept"``)
and offers ``x-log-compresstype: gzip`` (zlib bytes; refused with
``gzip_compress_type="reject"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import httpx
import pytest
from conformance_support import (
    ACCESS_KEY_ID,
    ACCESS_KEY_SECRET,
    NodeSender,
    Sender,
    SendFailed,
    build_sender,
)
from node_support import requires_node

from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.errors import ErrorCode
from yai_spool.sls.model import Log, LogGroup
from yai_spool.sls.request import Destination, Endpoint, build_put_logs_request
from yai_spool.sls.signing import sign_v1

PROJECT = "conformance"
CREDS = Credentials(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
GROUP = LogGroup(logs=(Log(1_767_225_600, (("msg", "extra headers"),), 1),), source="10.0.0.1")
EXTRA = {"x-log-extra": "from the test", "x-acs-extra": "also signed"}
MakeSender = Callable[..., Sender]

_ids = itertools.count()


def _logstore(case: str) -> str:
    return f"{case}-{next(_ids)}"


Request = tuple[str, dict[str, str], bytes]  # url, headers (as sent, original case), body


def _ours(emulator: Emulator, logstore: str, method: str, extra: dict[str, str]) -> Request:
    """Our request builder's request plus ``extra`` headers, signed by our signer."""
    destination = Destination(Endpoint.parse(emulator.url), PROJECT, logstore)
    prepared = build_put_logs_request(destination, GROUP, CREDS, signature_method=method)  # type: ignore[arg-type]
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "authorization"}
    headers.update(extra)
    sign_v1(headers, CREDS, "POST", prepared.path, {}, signature_method=method)  # type: ignore[arg-type]
    return prepared.url, headers, prepared.body


def _send(request: Request) -> httpx.Response:
    url, headers, body = request
    with httpx.Client(trust_env=False) as http:
        return http.post(url, headers=headers, content=body)


def _stored_headers(emulator: Emulator, logstore: str) -> dict[str, str]:
    (summary,) = emulator.requests(PROJECT, logstore)
    assert summary.outcome == "accepted", summary
    return summary.headers


@pytest.mark.parametrize("method", ["hmac-sha1", "hmac-sha256"])
def test_our_signer_signs_extra_headers(emulator: Emulator, method: str) -> None:
    logstore = _logstore("extra-ours")
    request = _ours(emulator, logstore, method, EXTRA)
    assert _send(request).status_code == 200
    headers = _stored_headers(emulator, logstore)
    assert {k: headers[k] for k in EXTRA} == EXTRA  # they did travel
    assert headers["x-log-signaturemethod"] == method
    # A signed extra header changed in transit: the signature no longer matches.
    for name in EXTRA:
        url, headers, body = _ours(emulator, logstore, method, EXTRA)
        response = _send((url, {**headers, name: "changed"}, body))
        assert (response.status_code, response.json()["errorCode"]) == (
            401,
            ErrorCode.SignatureNotMatch,
        )
    assert emulator.count(PROJECT, logstore) == 1


def test_python_sdk_signs_extra_headers_exactly_like_ours(emulator: Emulator) -> None:
    from aliyun.log.auth import AuthV1
    from aliyun.log.credentials import StaticCredentialsProvider

    logstore = _logstore("extra-sdk")
    url, ours, body = _ours(emulator, logstore, "hmac-sha1", {**EXTRA, "x-log-meta-origin": "py"})
    # The SDK's signer over the same request: it sets Date, Content-MD5, the method, the
    # Authorization and the x-log-date copy itself, from the headers it is given.
    sdk_headers = {
        k: v
        for k, v in ours.items()
        if k not in ("Authorization", "Date", "Content-MD5", "x-log-date", "x-log-signaturemethod")
    }
    path = f"/logstores/{logstore}/shards/lb"
    AuthV1(StaticCredentialsProvider(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "")).sign_request(
        "POST", path, {}, sdk_headers, body
    )
    # Ours over the SDK's date (it reads the clock itself): the very same Authorization.
    resigned = {k: v for k, v in ours.items() if k != "Authorization"}
    resigned["Date"] = sdk_headers["Date"]
    sign_v1(resigned, CREDS, "POST", path, {}, signature_method="hmac-sha1")
    assert resigned["Authorization"] == sdk_headers["Authorization"]
    response = _send((url, sdk_headers, body))
    assert response.status_code == 200, response.text
    headers = _stored_headers(emulator, logstore)
    assert headers["x-log-meta-origin"] == "py"  # sent, and (SDK rule) not signed
    assert headers["x-log-extra"] == EXTRA["x-log-extra"]


@requires_node
def test_node_gateway_signs_extra_and_meta_headers(
    emulator: Emulator, make_sender: MakeSender
) -> None:
    sender = make_sender("node-gateway-v1-sha256-lz4")
    assert isinstance(sender, NodeSender)
    logstore = _logstore("extra-node")
    sender.extra_headers = {**EXTRA, "x-log-meta-origin": "node"}
    sender.send(PROJECT, logstore, GROUP)
    headers = _stored_headers(emulator, logstore)
    assert headers["x-log-signaturemethod"] == "hmac-sha256"
    assert {k: headers[k] for k in EXTRA} == EXTRA
    assert headers["x-log-meta-origin"] == "node"  # signed by the gateway, accepted


@requires_node
def test_node_gateway_meta_header_form_is_refused_when_meta_headers_are_unsigned() -> None:
    """Control for the test above: the gateway really signs x-log-meta-*, so an emulator
    that only accepts the Python SDK's form refuses it, and accepts the same client without
    the header."""
    config = EmulatorConfig(
        access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET}, v1_meta_headers="unsigned"
    )
    with Emulator(config) as emu:
        sender = build_sender("node-gateway-v1-sha256-lz4", emu.url)
        assert isinstance(sender, NodeSender)
        sender.extra_headers = {"x-log-meta-origin": "node"}
        with pytest.raises(SendFailed) as info:
            sender.send(PROJECT, "meta-unsigned", GROUP)
        assert (info.value.status, info.value.error_code) == (401, ErrorCode.SignatureNotMatch)
        sender.extra_headers = {}
        sender.send(PROJECT, "meta-unsigned", GROUP)
        assert emu.count(PROJECT, "meta-unsigned") == 1


@pytest.fixture
def lenient() -> Iterator[Emulator]:
    config = EmulatorConfig(
        access_keys={ACCESS_KEY_ID: ACCESS_KEY_SECRET},
        missing_content_type="accept",
        gzip_compress_type="reject",
    )
    with Emulator(config) as emu:
        yield emu


@requires_node
def test_node_gateway_without_content_type(emulator: Emulator, lenient: Emulator) -> None:
    logstore = _logstore("no-content-type")
    for emu, expected in ((emulator, ErrorCode.MissingContentType), (lenient, None)):
        sender = build_sender("node-gateway-v1-sha256-lz4", emu.url)
        assert isinstance(sender, NodeSender)
        job = sender.job(PROJECT, logstore, GROUP)
        job["contentType"] = None  # the gateway's own behaviour for a binary body
        if expected is None:
            sender.send_job(job)
            (row,) = emu.logs(PROJECT, logstore)
            assert row.contents == (("msg", b"extra headers"),)
            (summary,) = emu.requests(PROJECT, logstore)
            assert "content-type" not in summary.headers
            assert "content-length" not in summary.headers  # chunked, as the gateway streams
        else:
            with pytest.raises(SendFailed) as info:
                sender.send_job(job)
            assert (info.value.status, info.value.error_code) == (400, expected)
            assert emu.count(PROJECT, logstore) == 0


@requires_node
def test_node_gateway_gzip_offer_is_refused_when_configured(lenient: Emulator) -> None:
    sender = build_sender("node-gateway-v1-sha256-gzip", lenient.url)
    with pytest.raises(SendFailed) as info:
        sender.send(PROJECT, "gzip-refused", GROUP)
    assert (info.value.status, info.value.error_code) == (400, ErrorCode.InvalidCompressType)
    # The same bytes under their documented name are fine.
    build_sender("node-gateway-v1-sha256-deflate", lenient.url).send(PROJECT, "gzip-refused", GROUP)
    assert lenient.count(PROJECT, "gzip-refused") == 1
