"""Endpoint/Destination rules and the signed PutLogs request, end to end against §3.3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest

from yai_spool.sls.compression import Compression, decompress
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import decode_log_group
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.model import Log, LogGroup
from yai_spool.sls.request import (
    Destination,
    Endpoint,
    PreparedRequest,
    build_put_logs_request,
    build_put_logs_request_from_raw,
    region_from_host,
    resign,
)
from yai_spool.sls.signing import parse_authorization, verify_request

GROUP = LogGroup(
    logs=(Log(1767225600, (("level", "INFO"), ("msg", "hello")), 123456789),),
    topic="mytopic",
    source="10.0.0.1",
    tags=(("env", "test"),),
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
CREDS = Credentials("LTAI5tTestKeyId", "TestSecret123")
STS_CREDS = Credentials("LTAI5tTestKeyId", "TestSecret123", "STS.tok")
DEST = Destination(Endpoint.parse("cn-hangzhou.log.aliyuncs.com"), "my-project", "my-logstore")


# --- Endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "scheme", "host", "port", "is_ip"),
    [
        ("cn-hangzhou.log.aliyuncs.com", "http", "cn-hangzhou.log.aliyuncs.com", None, False),
        (
            "https://cn-hangzhou.log.aliyuncs.com",
            "https",
            "cn-hangzhou.log.aliyuncs.com",
            None,
            False,
        ),
        ("HTTP://SLS.Example.Test:8000/some/path?x=1", "http", "sls.example.test", 8000, False),
        ("http://127.0.0.1:8080", "http", "127.0.0.1", 8080, True),
        ("127.0.0.1", "http", "127.0.0.1", None, True),
        ("localhost:9000", "http", "localhost", 9000, True),
        ("http://[::1]:8080/", "http", "::1", 8080, True),
        (" https://10.0.0.5:443 ", "https", "10.0.0.5", 443, True),
    ],
)
def test_endpoint_parse(value: str, scheme: str, host: str, port: int | None, is_ip: bool) -> None:
    endpoint = Endpoint.parse(value)
    assert (endpoint.scheme, endpoint.host, endpoint.port, endpoint.is_ip) == (
        scheme,
        host,
        port,
        is_ip,
    )


def test_endpoint_netloc_brackets_ipv6() -> None:
    assert Endpoint.parse("http://[::1]:8080").netloc == "[::1]:8080"
    assert str(Endpoint.parse("https://h.example:8443/x")) == "https://h.example:8443"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "ftp://host",
        "http://",
        "http://host:99999",
        "http://host:0",
        "http://u:p@host",
        "http://ho st",
        "http://host:abc",
    ],
)
def test_endpoint_parse_rejects(value: str) -> None:
    with pytest.raises(ConfigError):
        Endpoint.parse(value)


# --- Destination ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "logstore", "field"),
    [
        ("ab", "store", "project"),
        ("a" * 64, "store", "project"),
        ("My-Project", "store", "project"),
        ("my_project", "store", "project"),
        ("proj", "s", "logstore"),
        ("proj", "Store", "logstore"),
        ("proj", "x" * 64, "logstore"),
        ("proj", "a.b", "logstore"),
    ],
)
def test_destination_validates_names(project: str, logstore: str, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        Destination(Endpoint.parse("h.example"), project, logstore)


def test_destination_accepts_boundary_names_and_string_endpoints() -> None:
    dest = Destination("http://127.0.0.1:1234", "a-0", "a_")  # type: ignore[arg-type]
    assert dest.endpoint == Endpoint("http", "127.0.0.1", 1234)
    Destination(DEST.endpoint, "p" * 63, "s" * 63)


# --- the §3.3 worked example end to end ---------------------------------------------------


def test_v1_lb_request_is_exactly_the_sdks() -> None:
    req = build_put_logs_request(DEST, GROUP, CREDS, now=NOW, user_agent="ua")
    assert req.method == "POST"
    assert (
        req.url == "http://my-project.cn-hangzhou.log.aliyuncs.com/logstores/my-logstore/shards/lb"
    )
    assert req.host_header == "my-project.cn-hangzhou.log.aliyuncs.com"
    assert req.raw_size == 74
    assert req.body.hex().startswith("f03b0a28")
    assert len(req.body) == 76
    assert list(req.headers.items()) == [
        ("User-Agent", "ua"),
        ("x-log-bodyrawsize", "74"),
        ("Content-Type", "application/x-protobuf"),
        ("x-log-compresstype", "lz4"),
        ("x-log-apiversion", "0.6.0"),
        ("Host", "my-project.cn-hangzhou.log.aliyuncs.com"),
        ("x-log-signaturemethod", "hmac-sha1"),
        ("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("Content-MD5", "06B922B18335D4932A3F988E1BE4585D"),
        ("Authorization", "LOG LTAI5tTestKeyId:yJmKdSzHXzjak43xGU7EPkFRfS0="),
        ("x-log-date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ]


def test_v1_sts_route_request() -> None:
    req = build_put_logs_request(DEST, GROUP, STS_CREDS, now=NOW, hash_key="user 42")
    assert req.url.endswith("/logstores/my-logstore/shards/route?key=user+42")
    assert req.headers["x-acs-security-token"] == "STS.tok"
    assert req.headers["Authorization"] == "LOG LTAI5tTestKeyId:oHjVLPehi2DubCIE/U5UtGgzL3s="
    names = list(req.headers)
    assert names.index("Host") < names.index("x-acs-security-token") < names.index("Date")


def test_v4_request() -> None:
    req = build_put_logs_request(
        DEST, GROUP, CREDS, now=NOW, signature_version="v4", region="cn-hangzhou", user_agent="ua"
    )
    assert req.headers["Authorization"] == (
        "SLS4-HMAC-SHA256 Credential=LTAI5tTestKeyId/20260101/cn-hangzhou/sls/aliyun_v4_request,"
        "Signature=a114a75edb0dcee913072f5bbdd680a76c7c2d8ef93aad307e50e7f43c1fe30b"
    )
    assert req.headers["x-log-date"] == "20260101T000000Z"
    assert req.headers["x-log-content-sha256"] == (
        "befb7246dee6cff5176578dbd8b8f4a10431d9622403b605a8af72656db009dd"
    )
    for absent in ("Date", "Content-MD5", "x-log-signaturemethod"):
        assert absent not in req.headers


def test_v4_region_is_inferred_from_aliyun_endpoints_and_required_otherwise() -> None:
    req = build_put_logs_request(DEST, GROUP, CREDS, now=NOW, signature_version="v4")
    assert req.region == "cn-hangzhou"
    assert req.headers["Authorization"].endswith(
        "a114a75edb0dcee913072f5bbdd680a76c7c2d8ef93aad307e50e7f43c1fe30b"
    )
    ip_dest = Destination(Endpoint.parse("http://127.0.0.1:8080"), "proj", "store")
    with pytest.raises(ConfigError, match="region"):
        build_put_logs_request(ip_dest, GROUP, CREDS, signature_version="v4")


@pytest.mark.parametrize(
    ("host", "region"),
    [
        ("cn-hangzhou.log.aliyuncs.com", "cn-hangzhou"),
        ("cn-hangzhou-intranet.log.aliyuncs.com", "cn-hangzhou"),
        ("ap-southeast-1-share.log.aliyuncs.com", "ap-southeast-1"),
        ("sls.example.test", None),
        ("127.0.0.1", None),
    ],
)
def test_region_from_host(host: str, region: str | None) -> None:
    assert region_from_host(host) == region


# --- URL and Host forms -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "origin", "host"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "proj.127.0.0.1"),
        ("localhost:9000", "http://localhost:9000", "proj.localhost"),
        ("http://[::1]:8080", "http://[::1]:8080", "proj.::1"),
        (
            "sls.example.test:8000",
            "http://proj.sls.example.test:8000",
            "proj.sls.example.test:8000",
        ),
        ("https://sls.example.test", "https://proj.sls.example.test", "proj.sls.example.test"),
    ],
)
def test_url_and_host_forms(endpoint: str, origin: str, host: str) -> None:
    """IP endpoints are dialled as given; domains get the project as a subdomain."""
    dest = Destination(Endpoint.parse(endpoint), "proj", "store")
    req = build_put_logs_request(dest, GROUP, CREDS, now=NOW)
    assert req.url.startswith(f"{origin}/logstores/")
    assert req.headers["Host"] == req.host_header == host


def test_uncompressed_request_omits_compresstype_and_keeps_rawsize() -> None:
    raw = b"\x1a\x00\x22\x00"
    req = build_put_logs_request_from_raw(DEST, raw, CREDS, compression=Compression.NONE, now=NOW)
    assert "x-log-compresstype" not in req.headers
    assert req.body == raw
    assert req.headers["x-log-bodyrawsize"] == "4"


def test_empty_body_has_no_content_md5() -> None:
    req = build_put_logs_request_from_raw(DEST, b"", CREDS, compression=Compression.NONE, now=NOW)
    assert "Content-MD5" not in req.headers
    assert req.headers["x-log-bodyrawsize"] == "0"


@pytest.mark.parametrize("kind", list(Compression))
@pytest.mark.parametrize("version", ["v1", "v4"])
@pytest.mark.parametrize("hash_key", [None, "abc def/+=", "ключ"])
def test_a_server_can_verify_and_decode_every_request(
    kind: Compression, version: str, hash_key: str | None
) -> None:
    req = build_put_logs_request(
        DEST,
        GROUP,
        STS_CREDS,
        compression=kind,
        signature_version=version,
        hash_key=hash_key,
        now=NOW,  # type: ignore[arg-type]
    )
    # What the emulator does: form-decode the query, verify, decompress, decode.
    split = urlsplit(req.url)
    query = dict(parse_qsl(split.query, keep_blank_values=True))
    if hash_key is not None:
        assert query == {"key": hash_key}
    if hash_key == "abc def/+=":
        assert split.query == "key=abc+def%2F%2B%3D"  # what the SDK's `requests` puts on the wire
    auth = parse_authorization(req.headers["Authorization"])
    assert verify_request(auth, "TestSecret123", "POST", split.path, query, req.headers)
    assert not verify_request(auth, "other-secret", "POST", split.path, query, req.headers)
    raw = decompress(kind, req.body, int(req.headers["x-log-bodyrawsize"]))
    decoded = decode_log_group(raw)
    assert decoded.logs[0].contents == (("level", b"INFO"), ("msg", b"hello"))


def test_repr_masks_authorization_and_token() -> None:
    req = build_put_logs_request(DEST, GROUP, STS_CREDS, now=NOW)
    text = repr(req)
    assert "STS.tok" not in text
    assert "yJmK" not in text
    assert req.headers["Authorization"].split(":")[1] not in text
    assert "TestSecret123" not in text
    assert "****" in text
    assert "my-logstore" in text


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_resign_refreshes_date_and_signature_without_recompressing(version: str) -> None:
    first = build_put_logs_request(DEST, GROUP, STS_CREDS, now=NOW, signature_version=version)  # type: ignore[arg-type]
    later = NOW + timedelta(minutes=20)
    again = resign(first, STS_CREDS, now=later)
    fresh = build_put_logs_request(DEST, GROUP, STS_CREDS, now=later, signature_version=version)  # type: ignore[arg-type]
    assert again.body is first.body
    assert again.headers == fresh.headers
    assert list(again.headers) == list(fresh.headers)
    assert again.headers["Authorization"] != first.headers["Authorization"]
    assert (
        first.headers["Authorization"]
        == build_put_logs_request(
            DEST,
            GROUP,
            STS_CREDS,
            now=NOW,
            signature_version=version,  # type: ignore[arg-type]
        ).headers["Authorization"]
    )


def test_resign_with_credentials_that_lost_their_token() -> None:
    first = build_put_logs_request(DEST, GROUP, STS_CREDS, now=NOW)
    again = resign(first, CREDS, now=NOW)
    assert "x-acs-security-token" not in again.headers
    assert again.headers["Authorization"] == "LOG LTAI5tTestKeyId:yJmKdSzHXzjak43xGU7EPkFRfS0="


def test_hmac_sha256_is_built_sent_and_kept_by_resign() -> None:
    req = build_put_logs_request(DEST, GROUP, STS_CREDS, now=NOW, signature_method="hmac-sha256")
    assert req.signature_method == "hmac-sha256"
    assert req.headers["x-log-signaturemethod"] == "hmac-sha256"
    signature = req.headers["Authorization"].rsplit(":", 1)[1]
    assert len(signature) == 44
    sha1 = build_put_logs_request(DEST, GROUP, STS_CREDS, now=NOW)
    assert sha1.headers["x-log-signaturemethod"] == "hmac-sha1"
    # Same header set and order, only the method value and the signature differ.
    assert list(req.headers) == list(sha1.headers)
    again = resign(req, STS_CREDS, now=NOW + timedelta(minutes=20))
    assert again.headers["x-log-signaturemethod"] == "hmac-sha256"
    assert len(again.headers["Authorization"].rsplit(":", 1)[1]) == 44
    assert resign(req, STS_CREDS, now=NOW).headers == req.headers
    v4 = build_put_logs_request(
        DEST, GROUP, CREDS, now=NOW, signature_version="v4", signature_method="hmac-sha256"
    )
    assert "x-log-signaturemethod" not in v4.headers  # V4 ignores it: always HMAC-SHA256
    with pytest.raises(ConfigError, match="signature_method"):
        build_put_logs_request(DEST, GROUP, CREDS, signature_method="hmac-md5")  # type: ignore[arg-type]


def test_naive_now_and_bad_version_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="timezone"):
        build_put_logs_request(DEST, GROUP, CREDS, now=datetime(2026, 1, 1))
    with pytest.raises(ConfigError, match="signature_version"):
        build_put_logs_request(DEST, GROUP, CREDS, signature_version="v2")  # type: ignore[arg-type]


def test_default_now_is_current_time() -> None:
    req = build_put_logs_request(DEST, GROUP, CREDS)
    assert isinstance(req, PreparedRequest)
    sent = datetime.strptime(req.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert abs((sent - datetime.now(UTC)).total_seconds()) < 3600
