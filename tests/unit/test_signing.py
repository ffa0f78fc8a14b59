"""V1/V4 signatures: every fixed vector of sls-protocol.md §3.3 (plus the GO SDK's), the official
SDK's signers as a randomized oracle, Authorization parsing and server-side verification.

V1 hmac-sha256 worked examples: the §3.3 inputs with ``x-log-signaturemethod: hmac-sha256``;
the expected values were computed here and independently by ``@alicloud/gateway-sls`` 0.3.2's
own ``getSignature`` (the official hmac-sha256 signer; the randomized Node comparison lives in
tests/conformance/test_node_signers.py, since it needs Node.js)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yai_spool.sls.credentials import Credentials
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.signing import (
    EMPTY_SHA256,
    SIGNATURE_METHODS,
    ParsedAuthorization,
    SignatureMethod,
    UnsupportedSignatureMethod,
    content_md5,
    content_sha256,
    format_http_date,
    format_v4_date,
    parse_authorization,
    sign_v1,
    sign_v4,
    signature_method_of,
    v1_signature,
    v1_string_to_sign,
    v4_canonical_request,
    v4_signature,
    v4_string_to_sign,
    validate_signature_method,
    verify_request,
    verify_v1,
    verify_v4,
)

# --- §3.3 worked example inputs -----------------------------------------------------------

AKID = "LTAI5tTestKeyId"
SECRET = "TestSecret123"
LZ4_BODY = bytes.fromhex(
    "f03b0a280880f2d6ca06120d0a056c6576656c1204494e464f120c0a036d7367120568656c6c6f2515cd5b07"
    "1a076d79746f706963220831302e302e302e31320b0a03656e76120474657374"
)
HOST = "my-project.cn-hangzhou.log.aliyuncs.com"
LB_PATH = "/logstores/my-logstore/shards/lb"
ROUTE_PATH = "/logstores/my-logstore/shards/route"
ROUTE_QUERY = {"key": "user 42"}
STS_CREDS = Credentials(AKID, SECRET, "STS.tok")
DATE = "Thu, 01 Jan 2026 00:00:00 GMT"
BODY_SHA256 = "befb7246dee6cff5176578dbd8b8f4a10431d9622403b605a8af72656db009dd"


def unsigned_headers(**extra: str) -> dict[str, str]:
    """The §3.3 request's headers before any signer adds its own (the V4 signer's input)."""
    headers = {
        "x-log-bodyrawsize": "74",
        "Content-Type": "application/x-protobuf",
        "x-log-compresstype": "lz4",
        "x-log-apiversion": "0.6.0",
        "Host": HOST,
    }
    headers.update(extra)
    return headers


def v1_headers(**extra: str) -> dict[str, str]:
    """The §3.3 request as the V1 signer sees it: method, Date and Content-MD5 added."""
    v1 = {
        "x-log-signaturemethod": "hmac-sha1",
        "Date": DATE,
        "Content-MD5": "06B922B18335D4932A3F988E1BE4585D",
    }
    return unsigned_headers(**{**v1, **extra})


V4_SIGNED = unsigned_headers(
    **{"x-log-content-sha256": BODY_SHA256, "x-log-date": "20260101T000000Z"}
)


def sign_route(headers: dict[str, str], signature_method: SignatureMethod | None = None) -> None:
    """``sign_v1`` of the §3.3 route-key request with the STS credentials."""
    sign_v1(headers, STS_CREDS, "POST", ROUTE_PATH, ROUTE_QUERY, signature_method=signature_method)


def test_worked_example_body_digests() -> None:
    assert content_md5(LZ4_BODY) == "06B922B18335D4932A3F988E1BE4585D"
    assert content_sha256(LZ4_BODY) == BODY_SHA256


def test_v1_worked_example_lb() -> None:
    expected_sts = (
        "POST\n06B922B18335D4932A3F988E1BE4585D\napplication/x-protobuf\n"
        "Thu, 01 Jan 2026 00:00:00 GMT\nx-log-apiversion:0.6.0\nx-log-bodyrawsize:74\n"
        "x-log-compresstype:lz4\nx-log-signaturemethod:hmac-sha1\n"
        "/logstores/my-logstore/shards/lb"
    )
    headers = v1_headers()
    assert v1_string_to_sign("POST", LB_PATH, {}, headers) == expected_sts
    assert v1_signature(SECRET, "POST", LB_PATH, {}, headers) == "yJmKdSzHXzjak43xGU7EPkFRfS0="


def test_v1_worked_example_sts_and_route_key_signs_the_decoded_value() -> None:
    headers = v1_headers(**{"x-acs-security-token": "STS.tok"})
    sts = v1_string_to_sign("POST", ROUTE_PATH, ROUTE_QUERY, headers)
    assert "\nx-acs-security-token:STS.tok\nx-log-apiversion:0.6.0\n" in sts
    assert sts.endswith("\n/logstores/my-logstore/shards/route?key=user 42")
    assert v1_signature(SECRET, "POST", ROUTE_PATH, ROUTE_QUERY, headers) == (
        "oHjVLPehi2DubCIE/U5UtGgzL3s="
    )


def test_sign_v1_builds_the_authorization_header_and_unsigned_date_copy() -> None:
    headers = v1_headers()
    del headers["x-log-signaturemethod"]
    sign_route(headers)
    assert headers["Authorization"] == "LOG LTAI5tTestKeyId:oHjVLPehi2DubCIE/U5UtGgzL3s="
    assert headers["x-acs-security-token"] == "STS.tok"
    assert headers["x-log-signaturemethod"] == "hmac-sha1"
    assert headers["x-log-date"] == DATE
    # Re-signing (a retry) must not sign the x-log-date copy nor duplicate headers.
    sign_route(headers)
    assert headers["Authorization"] == "LOG LTAI5tTestKeyId:oHjVLPehi2DubCIE/U5UtGgzL3s="
    assert sum(1 for name in headers if name.lower() == "authorization") == 1


def test_sign_v1_requires_a_date() -> None:
    headers = v1_headers()
    del headers["Date"]
    with pytest.raises(ValueError, match="Date"):
        sign_v1(headers, Credentials(AKID, SECRET), "POST", LB_PATH, {})


def test_v1_excludes_x_log_date_and_meta_headers_and_ignores_case() -> None:
    base = v1_signature(SECRET, "POST", LB_PATH, {}, v1_headers())
    noisy = v1_headers(
        **{"x-log-date": "whatever", "X-Log-Meta-Trace": "abc", "User-Agent": "x", "Accept": "*/*"}
    )
    assert v1_signature(SECRET, "POST", LB_PATH, {}, noisy) == base
    upper = {name.upper(): value for name, value in v1_headers().items()}
    assert v1_signature(SECRET, "POST", LB_PATH, {}, upper) == base
    changed = v1_headers(**{"x-log-bodyrawsize": "75"})
    assert v1_signature(SECRET, "POST", LB_PATH, {}, changed) != base


# --- V1 with hmac-sha256 (@alicloud/gateway-sls) -----------------------------------------

SHA256_LB = "6SzzyVVTSlSfYHm2+yhF5hR8wazJgxreAG04LhCNzRk="
SHA256_STS_ROUTE = "xGTqeddY1gC8CG/K+WgUPwUOXnEa36p6xbKbrsctykc="


def test_v1_hmac_sha256_worked_example_lb() -> None:
    headers = v1_headers(**{"x-log-signaturemethod": "hmac-sha256"})
    sts = v1_string_to_sign("POST", LB_PATH, {}, headers)
    assert "\nx-log-signaturemethod:hmac-sha256\n" in sts  # the method itself is signed
    got = v1_signature(SECRET, "POST", LB_PATH, {}, headers, signature_method="hmac-sha256")
    assert got == SHA256_LB
    assert len(got) == 44  # base64 of 32 bytes (SHA-1: 28 characters)
    # The same StringToSign under SHA-1 is a different (28-character) value.
    assert len(v1_signature(SECRET, "POST", LB_PATH, {}, headers)) == 28


def test_v1_hmac_sha256_worked_example_sts_and_route_key() -> None:
    headers = v1_headers(
        **{"x-log-signaturemethod": "hmac-sha256", "x-acs-security-token": "STS.tok"}
    )
    got = v1_signature(
        SECRET, "POST", ROUTE_PATH, ROUTE_QUERY, headers, signature_method="hmac-sha256"
    )
    assert got == SHA256_STS_ROUTE


def test_sign_v1_with_hmac_sha256_sets_the_header_and_signs_with_it() -> None:
    headers = v1_headers()
    del headers["x-log-signaturemethod"]
    sign_route(headers, signature_method="hmac-sha256")
    assert headers["x-log-signaturemethod"] == "hmac-sha256"
    assert headers["Authorization"] == f"LOG {AKID}:{SHA256_STS_ROUTE}"
    # signature_method=None re-signs with the method the request already names (a retry).
    sign_route(headers)
    assert headers["Authorization"] == f"LOG {AKID}:{SHA256_STS_ROUTE}"
    # An explicit method replaces the header (any spelling of its name), never duplicates it.
    headers["X-Log-SignatureMethod"] = headers.pop("x-log-signaturemethod")
    sign_v1(headers, Credentials(AKID, SECRET), "POST", LB_PATH, {}, signature_method="hmac-sha1")
    assert [k for k in headers if k.lower() == "x-log-signaturemethod"] == ["x-log-signaturemethod"]
    assert headers["Authorization"] == f"LOG {AKID}:yJmKdSzHXzjak43xGU7EPkFRfS0="


@pytest.mark.parametrize("bad", ["hmac-md5", "HMAC-SHA256", "", None, 256])
def test_unknown_signature_methods_are_refused_in_one_place(bad: object) -> None:
    with pytest.raises(ConfigError, match="signature_method must be one of 'hmac-sha1'"):
        validate_signature_method(bad)
    with pytest.raises(ConfigError, match=r"shipping\.signature_method"):
        validate_signature_method(bad, field="shipping.signature_method")
    with pytest.raises(ConfigError):
        v1_signature(SECRET, "POST", LB_PATH, {}, v1_headers(), signature_method=bad)  # type: ignore[arg-type]
    headers = v1_headers(**{"x-log-signaturemethod": "hmac-md5"})
    with pytest.raises(ConfigError, match="x-log-signaturemethod"):
        sign_v1(headers, Credentials(AKID, SECRET), "POST", LB_PATH, {})  # keeps the header's


def test_validate_signature_method_accepts_exactly_the_two_methods() -> None:
    assert set(SIGNATURE_METHODS) == {"hmac-sha1", "hmac-sha256"}
    for method in SIGNATURE_METHODS:
        assert validate_signature_method(method) == method


def test_signature_method_of_a_received_request() -> None:
    assert signature_method_of({}) == "hmac-sha1"  # absent: the documented default
    assert signature_method_of({"X-Log-SignatureMethod": " HMAC-SHA256 "}) == "hmac-sha256"
    with pytest.raises(UnsupportedSignatureMethod, match="hmac-md5"):
        signature_method_of({"x-log-signaturemethod": "hmac-md5"})
    with pytest.raises(UnsupportedSignatureMethod) as info:
        signature_method_of({"x-log-signaturemethod": "x" * 500})
    assert len(str(info.value)) < 200  # the echoed value is truncated


def test_verify_v1_hashes_with_the_requests_own_method() -> None:
    sha256 = v1_headers(**{"x-log-signaturemethod": "hmac-sha256"})
    assert verify_v1(SECRET, SHA256_LB, "POST", LB_PATH, {}, sha256)
    assert not verify_v1(SECRET, SHA256_LB, "POST", LB_PATH, {}, v1_headers())
    assert not verify_v1("wrong", SHA256_LB, "POST", LB_PATH, {}, sha256)
    unknown = v1_headers(**{"x-log-signaturemethod": "hmac-md5"})
    assert not verify_v1(SECRET, SHA256_LB, "POST", LB_PATH, {}, unknown)


def test_x_log_meta_headers_in_v1_per_form() -> None:
    headers = v1_headers(**{"x-log-meta-origin": "node"})
    python_form = v1_signature(SECRET, "POST", LB_PATH, {}, headers)
    node_form = v1_signature(SECRET, "POST", LB_PATH, {}, headers, sign_meta_headers=True)
    assert python_form == "yJmKdSzHXzjak43xGU7EPkFRfS0="  # meta ignored, as without it
    assert node_form != python_form
    assert "x-log-meta-origin:node\n" in v1_string_to_sign(
        "POST", LB_PATH, {}, headers, sign_meta_headers=True
    )
    for form, ok in (("unsigned", (True, False)), ("signed", (False, True))):
        assert (
            verify_v1(SECRET, python_form, "POST", LB_PATH, {}, headers, meta_headers=form),
            verify_v1(SECRET, node_form, "POST", LB_PATH, {}, headers, meta_headers=form),
        ) == ok  # type: ignore[arg-type]
    for signature in (python_form, node_form):
        assert verify_v1(SECRET, signature, "POST", LB_PATH, {}, headers, meta_headers="either")
    assert not verify_v1(SECRET, "AAAA", "POST", LB_PATH, {}, headers, meta_headers="either")


def test_v1_falls_back_to_x_log_date_when_date_is_missing() -> None:
    headers = v1_headers()
    del headers["Date"]
    headers["x-log-date"] = DATE
    assert v1_signature(SECRET, "POST", LB_PATH, {}, headers) == "yJmKdSzHXzjak43xGU7EPkFRfS0="


def test_v4_worked_example() -> None:
    headers = {**V4_SIGNED, "User-Agent": "not signed"}
    canonical, signed = v4_canonical_request("POST", LB_PATH, {}, headers)
    assert canonical == (
        "POST\n/logstores/my-logstore/shards/lb\n\n"
        "content-type:application/x-protobuf\n"
        "host:my-project.cn-hangzhou.log.aliyuncs.com\n"
        "x-log-apiversion:0.6.0\nx-log-bodyrawsize:74\nx-log-compresstype:lz4\n"
        f"x-log-content-sha256:{BODY_SHA256}\nx-log-date:20260101T000000Z\n\n"
        "content-type;host;x-log-apiversion;x-log-bodyrawsize;x-log-compresstype;"
        f"x-log-content-sha256;x-log-date\n{BODY_SHA256}"
    )
    assert signed == (
        "content-type;host;x-log-apiversion;x-log-bodyrawsize;x-log-compresstype;"
        "x-log-content-sha256;x-log-date"
    )
    sts = v4_string_to_sign("cn-hangzhou", "POST", LB_PATH, {}, headers)
    assert sts.splitlines() == [
        "SLS4-HMAC-SHA256",
        "20260101T000000Z",
        "20260101/cn-hangzhou/sls/aliyun_v4_request",
        "48a8a039c13ba71d216ad68516e3b04205f15db4925373ed8f9e8c03af06149c",
    ]
    expected = "a114a75edb0dcee913072f5bbdd680a76c7c2d8ef93aad307e50e7f43c1fe30b"
    assert v4_signature(SECRET, "cn-hangzhou", "POST", LB_PATH, {}, headers) == expected


def test_sign_v4_builds_the_authorization_header() -> None:
    headers = unsigned_headers()
    now = datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))  # = 00:00 UTC
    sign_v4(headers, Credentials(AKID, SECRET), "POST", LB_PATH, {}, LZ4_BODY, "cn-hangzhou", now)
    assert headers["x-log-content-sha256"] == BODY_SHA256
    assert headers["x-log-date"] == "20260101T000000Z"
    assert headers["Authorization"] == (
        "SLS4-HMAC-SHA256 Credential=LTAI5tTestKeyId/20260101/cn-hangzhou/sls/aliyun_v4_request,"
        "Signature=a114a75edb0dcee913072f5bbdd680a76c7c2d8ef93aad307e50e7f43c1fe30b"
    )
    assert "Date" not in headers
    assert "Content-MD5" not in headers


def test_sign_v4_rejects_naive_time_and_empty_region() -> None:
    with pytest.raises(ValueError, match="timezone"):
        sign_v4({}, Credentials(AKID, SECRET), "POST", "/", {}, b"", "r", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="region"):
        sign_v4({}, Credentials(AKID, SECRET), "POST", "/", {}, b"", "", datetime.now(UTC))


# --- fixed vectors from the Rust SDK (sign.rs; all listed in §3.3) and the GO SDK ------------

RS_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"
RS_BODY = b'\n            {"key": "value"}\n        '
RS_BASE = {"Date": RS_DATE, "x-log-apiversion": "0.6.0", "x-log-signaturemethod": "hmac-sha1"}
RS_JSON = {**RS_BASE, "Content-Type": "application/json", "Content-MD5": content_md5(RS_BODY)}
RS_TOKEN = {**RS_JSON, "x-acs-security-token": "test-security-token"}
RS_QUERY = {"type": "log", "offset": "0", "line": "100"}
RS_CURSOR = {"type": "log", "count": "1000", "cursor": "MTczNzY2OTAzNjAxNzIxODQ1NA=="}
RS_SECRET = "test-access-key"
RS_PATH = "/logstores/test-logstore"
RS_SHARD = "/logstores/test/shards/2"
GO_SECRET = "mockAccessKeySecret"
GO_HEADERS = {
    "x-log-apiversion": "0.6.0",
    "x-log-signaturemethod": "hmac-sha1",
    "x-log-bodyrawsize": "0",
    "Date": "Mon, 3 Jan 2010 08:33:47 GMT",
}

# id -> (secret, path, query, headers, expected V1 signature)
V1_VECTORS: dict[str, tuple[str, str, dict[str, str], dict[str, str], str]] = {
    "rs-case1-empty": ("", "/", {}, RS_BASE, "SApFTtfTFKHmzdEdaMe5TjNn+RQ="),
    "rs-case2-query-body": (RS_SECRET, RS_PATH, RS_QUERY, RS_JSON, "4pL2xZJERC3tPKtRiHh9+nMG3tI="),
    "rs-case3-token": (RS_SECRET, RS_PATH, RS_QUERY, RS_TOKEN, "ZQt+0wIvpd+O9yIJKeKxZTJ2hv0="),
    "rs-case4-cursor": (RS_SECRET, RS_SHARD, RS_CURSOR, RS_TOKEN, "K3rw5WXRe77aZ/meSyEa8NNUYFc="),
    "go-v1-case1": (GO_SECRET, "/logstores", {}, GO_HEADERS, "Rwm6cTKzoti4HWoe+GKcb6Kv07E="),
}


@pytest.mark.parametrize(
    ("secret", "path", "query", "headers", "expected"), V1_VECTORS.values(), ids=V1_VECTORS
)
def test_v1_fixed_vectors(
    secret: str, path: str, query: dict[str, str], headers: dict[str, str], expected: str
) -> None:
    method = "GET" if path in ("/", "/logstores") else "POST"
    assert v1_signature(secret, method, path, query, headers) == expected


def test_rs_vector_body_md5() -> None:
    assert content_md5(RS_BODY) == "CE688F8D1AC3ED309BA9BE0A5ABAFCE5"


def test_go_v4_case2() -> None:
    body = b"adasd= -asd zcas"
    headers = {"x-log-date": "20220808T032330Z", "x-log-content-sha256": content_sha256(body)}
    assert (
        v4_signature("zxasdasdasw2", "cn-shanghai", "POST", "/logstores", {}, headers)
        == "8a10a5e723cb2e75964816de660b2c16a58af8bc0261f7f0722d832468c76ce8"
    )


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("123abc!@#$%^&*()-=_+ ~|\\/", "123abc%21%40%23%24%25%5E%26%2A%28%29-%3D_%2B%20~%7C%5C%2F"),
        (
            "!@#$%^&*()=-+ ~./_[()]%20你好\x00\u0111❤😓",
            "%21%40%23%24%25%5E%26%2A%28%29%3D-%2B%20~.%2F_%5B%28%29%5D%2520"
            "%E4%BD%A0%E5%A5%BD%00%C4%91%E2%9D%A4%F0%9F%98%93",
        ),
    ],
)
def test_v4_query_values_are_rfc3986_encoded_like_go(value: str, encoded: str) -> None:
    canonical, _ = v4_canonical_request("GET", "/", {"k": value, "empty": ""}, {})
    assert canonical.split("\n")[2] == f"empty&k={encoded}"


def test_digests_of_empty_body() -> None:
    assert content_md5(b"") == ""
    assert content_sha256(b"") == EMPTY_SHA256 == hashlib.sha256(b"").hexdigest()


def test_date_formats_ignore_locale_and_convert_to_utc() -> None:
    moment = datetime(2026, 3, 7, 1, 2, 3, tzinfo=timezone(timedelta(hours=9)))
    assert format_http_date(moment) == "Fri, 06 Mar 2026 16:02:03 GMT"
    assert format_v4_date(moment) == "20260306T160203Z"
    with pytest.raises(ValueError, match="timezone"):
        format_http_date(datetime(2026, 1, 1))


# --- the official SDK as an oracle (tests only: its signer calls locale.setlocale) -----------

safe_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_characters="\x7f"),
    max_size=16,
)
name_suffix = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)
extension_headers = st.dictionaries(
    st.one_of(
        name_suffix.map(lambda s: "x-log-" + s),
        name_suffix.map(lambda s: "x-acs-" + s),
        name_suffix.map(lambda s: "x-log-meta-" + s),
        st.sampled_from(["user-agent", "accept", "content-length", "x-other"]),
    ),
    safe_text,
    max_size=6,
).map(lambda d: {k: v for k, v in d.items() if k != "x-log-date"})
query_params = st.dictionaries(
    st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.",
        min_size=1,
        max_size=6,
    ),
    safe_text,
    max_size=4,
)
paths = st.lists(name_suffix, min_size=0, max_size=4).map(lambda parts: "/" + "/".join(parts))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE"])
secrets = st.text(min_size=1, max_size=24).filter(lambda s: "\x00" not in s)
bodies = st.binary(max_size=64)
content_types = st.one_of(
    st.none(), st.sampled_from(["application/x-protobuf", "application/json"])
)


@dataclass(frozen=True)
class OracleCase:
    """One random request for the SDK oracle tests (what both signers are given)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    secret: str
    with_token: bool
    content_type: str | None

    @property
    def token(self) -> str:
        return "STS.token+/=" if self.with_token else ""

    def base_headers(self, **extra: str) -> dict[str, str]:
        headers = {**self.headers, **extra}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        return headers

    def sdk_provider(self) -> Any:
        from aliyun.log.credentials import StaticCredentialsProvider

        return StaticCredentialsProvider("akid", self.secret, self.token)

    def credentials(self) -> Credentials:
        return Credentials("akid", self.secret, self.token or None)


oracle_cases = st.builds(
    OracleCase,
    methods,
    paths,
    query_params,
    extension_headers,
    bodies,
    secrets,
    st.booleans(),
    content_types,
)


@settings(max_examples=120, deadline=None)
@given(oracle_cases)
def test_v1_matches_the_official_sdk(case: OracleCase) -> None:
    from aliyun.log.auth import AuthV1

    sdk_headers = case.base_headers()
    AuthV1(case.sdk_provider()).sign_request(
        case.method, case.path, dict(case.query), sdk_headers, case.body
    )
    # The SDK chose Date (now) and Content-MD5; sign the same request with ours.
    ours = case.base_headers(Date=sdk_headers["Date"])
    if case.body:
        ours["Content-MD5"] = content_md5(case.body)
    sign_v1(ours, case.credentials(), case.method, case.path, case.query)
    assert ours["Authorization"] == sdk_headers["Authorization"]
    assert ours["x-log-date"] == sdk_headers["x-log-date"]


@settings(max_examples=120, deadline=None)
@given(
    oracle_cases,
    st.sampled_from(["cn-hangzhou", "ap-southeast-1", "us-west-1"]),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
)
def test_v4_matches_the_official_sdk(case: OracleCase, region: str, now: datetime) -> None:
    from aliyun.log.auth import AuthV4

    base = case.base_headers(Host="proj.example.test:8080")
    sdk_headers = dict(base)
    expected = AuthV4(case.sdk_provider(), region)._do_sign_request(
        case.method, case.path, dict(case.query), sdk_headers, case.body, format_v4_date(now)
    )
    ours = dict(base)
    sign_v4(ours, case.credentials(), case.method, case.path, case.query, case.body, region, now)
    assert ours["Authorization"] == expected
    assert ours["x-log-content-sha256"] == sdk_headers["x-log-content-sha256"]


# --- Authorization parsing and verification -----------------------------------------------

V4_AUTH = (
    "SLS4-HMAC-SHA256 Credential=LTAI5tTestKeyId/20260101/cn-hangzhou/sls/aliyun_v4_request,"
    "Signature=a114a75edb0dcee913072f5bbdd680a76c7c2d8ef93aad307e50e7f43c1fe30b"
)


def test_parse_authorization_v1_and_v4() -> None:
    assert parse_authorization("LOG LTAI5tTestKeyId:yJmKdSzHXzjak43xGU7EPkFRfS0=") == (
        ParsedAuthorization("v1", AKID, "yJmKdSzHXzjak43xGU7EPkFRfS0=")
    )
    assert parse_authorization("LOG :SApFTtfTFKHmzdEdaMe5TjNn+RQ=").access_key_id == ""
    parsed = parse_authorization(V4_AUTH)
    assert parsed == ParsedAuthorization(
        "v4",
        AKID,
        "a114a75edb0dcee913072f5bbdd680a76c7c2d8ef93aad307e50e7f43c1fe30b",
        date="20260101",
        region="cn-hangzhou",
    )


@pytest.mark.parametrize(
    "value",
    [
        "",
        "LOG",
        "LOG akid",
        "LOG akid:",
        "LOG akid:not base64!",
        "Basic dXNlcjpwYXNz",
        "SLS4-HMAC-SHA256 Credential=akid/2026/cn/sls/aliyun_v4_request,Signature=" + "a" * 64,
        "SLS4-HMAC-SHA256 Credential=akid/20260101/cn/oss/aliyun_v4_request,Signature=" + "a" * 64,
        "SLS4-HMAC-SHA256 Credential=akid/20260101/cn/sls/aliyun_v4_request,Signature=abc",
        "SLS4-HMAC-SHA256 Credential=akid/20260101/cn/sls/aliyun_v4_request",
    ],
)
def test_parse_authorization_rejects_malformed_values(value: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_authorization(value)


def test_verify_request_v1() -> None:
    headers = v1_headers(Authorization="LOG LTAI5tTestKeyId:yJmKdSzHXzjak43xGU7EPkFRfS0=")
    auth = parse_authorization(headers["Authorization"])
    assert verify_request(auth, SECRET, "POST", LB_PATH, {}, headers)
    assert not verify_request(auth, "wrong", "POST", LB_PATH, {}, headers)
    assert not verify_request(auth, SECRET, "POST", LB_PATH, {"key": "x"}, headers)
    assert not verify_request(auth, SECRET, "PUT", LB_PATH, {}, headers)
    assert verify_v1(SECRET, auth.signature, "POST", LB_PATH, {}, headers)


def test_verify_request_v4_checks_scope_date() -> None:
    headers = {name.lower(): value for name, value in V4_SIGNED.items()}
    auth = parse_authorization(V4_AUTH)
    assert verify_request(auth, SECRET, "POST", LB_PATH, {}, headers)
    assert verify_v4(SECRET, auth.signature, "cn-hangzhou", "POST", LB_PATH, {}, headers)
    other_day = dict(headers, **{"x-log-date": "20260102T000000Z"})
    assert not verify_request(auth, SECRET, "POST", LB_PATH, {}, other_day)
    tampered = dict(headers, host="other.cn-hangzhou.log.aliyuncs.com")
    assert not verify_request(auth, SECRET, "POST", LB_PATH, {}, tampered)
    no_date = {k: v for k, v in headers.items() if k != "x-log-date"}
    assert not verify_v4(SECRET, auth.signature, "cn-hangzhou", "POST", LB_PATH, {}, no_date)
