"""SLS request signatures, V1 (``LOG``, HMAC-SHA1 or HMAC-SHA256) and V4 (``SLS4-HMAC-SHA256``).

Owns the canonical strings, the signatures, the ``Authorization`` header syntax and the
server-side verification used by the emulator; all pure functions. Specified in
sls-protocol.md §3 and checked against every worked example there and, in tests only,
against the official signers (the Python SDK's ``AuthV1``/``AuthV4``, the Node.js
``@alicloud/gateway-sls`` hmac-sha256 signer).

V1 has two hash methods over one StringToSign, named by the signed header
``x-log-signaturemethod``: ``hmac-sha1`` (Python SDK, Rust producer, Go, Java, the Node.js
``@alicloud/log`` and ``aliyun-sdk``) and ``hmac-sha256`` (Alibaba's OpenAPI gateway for SLS,
``@alicloud/gateway-sls``). The signature is ``base64(HMAC(secret, StringToSign))`` either
way: 28 characters for SHA-1, 44 for SHA-256.

Invariants:

- Pure: no clock, no environment, no network. Dates come in through headers or ``now``.
- Header names are case-insensitive in meaning; every function lower-cases them itself.
- ``query`` always holds DECODED values (``key=user 42``, not ``user+42``): V1 signs them
  verbatim, V4 percent-encodes them per RFC 3986.
- V1 never signs ``x-log-date`` (the SDK adds it after signing) nor, by default,
  ``x-log-meta-*`` (the Python SDK's rule). The Node.js clients do sign ``x-log-meta-*``
  (they sign every ``x-log-*``/``x-acs-*`` name), so a verifier can ask for that form with
  ``sign_meta_headers=True``; every other ``x-log-*``/``x-acs-*`` header is signed by all the
  official clients and by ours, lower-cased and sorted.
- A signature method is one of ``SIGNATURE_METHODS``; ``validate_signature_method`` is the one
  place that says so (configuration and the emulator both go through it).
- The official SDK signer is never imported here: it calls ``locale.setlocale`` on every
  request, which is process-wide and not thread-safe. We format dates without the locale.
- Signatures are compared with ``hmac.compare_digest`` (constant time).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal, cast
from urllib.parse import quote

from yai_spool.sls.errors import ConfigError

if TYPE_CHECKING:
    from yai_spool.sls.credentials import Credentials

__all__ = [
    "API_VERSION",
    "DEFAULT_SIGNATURE_METHOD",
    "EMPTY_SHA256",
    "SIGNATURE_METHODS",
    "SIGNATURE_METHOD_V1",
    "V4_ALGORITHM",
    "ParsedAuthorization",
    "SignatureMethod",
    "UnsupportedSignatureMethod",
    "content_md5",
    "content_sha256",
    "format_http_date",
    "format_v4_date",
    "parse_authorization",
    "sign_v1",
    "sign_v4",
    "signature_method_of",
    "utc_now",
    "v1_signature",
    "v1_string_to_sign",
    "v4_canonical_request",
    "v4_signature",
    "v4_string_to_sign",
    "validate_signature_method",
    "verify_request",
    "verify_v1",
    "verify_v4",
]

API_VERSION = "0.6.0"

SignatureMethod = Literal["hmac-sha1", "hmac-sha256"]
#: V1 hash methods by their ``x-log-signaturemethod`` value (read-only).
SIGNATURE_METHODS: Final[Mapping[str, Callable[..., Any]]] = MappingProxyType(
    {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256}
)
#: What every SDK but the OpenAPI gateway sends, and what a V1 request without the header means.
DEFAULT_SIGNATURE_METHOD: Final[SignatureMethod] = "hmac-sha1"
SIGNATURE_METHOD_V1 = DEFAULT_SIGNATURE_METHOD  # the 0.1 name, kept for importers
V4_ALGORITHM = "SLS4-HMAC-SHA256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
_V4_TERMINATOR = "aliyun_v4_request"
_V4_SERVICE = "sls"

# RFC 1123 names, fixed: strftime("%a") would follow the process locale (the SDK's reason for
# calling setlocale, which we refuse to do).
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class UnsupportedSignatureMethod(ValueError):
    """A request names an ``x-log-signaturemethod`` that is not in ``SIGNATURE_METHODS``.

    Raised by ``signature_method_of`` (server side); the emulator answers it with
    ``InvalidSignatureMethod``. The message holds the (truncated) value, never a secret.
    """


def validate_signature_method(value: object, *, field: str = "signature_method") -> SignatureMethod:
    """Return ``value`` if it is a V1 signature method (``hmac-sha1`` or ``hmac-sha256``).

    The one check behind every ``signature_method=`` option (clients, handlers, modes,
    dictConfig and TOML). Exact, lower-case spelling: that is what the SDKs send.

    Raises:
        ConfigError: naming ``field`` and the accepted values.
    """
    if not isinstance(value, str) or value not in SIGNATURE_METHODS:
        shown = repr(value)[:40]  # bounded: a mistyped keyword could carry anything
        raise ConfigError(
            f"{field} must be one of {', '.join(map(repr, SIGNATURE_METHODS))}, got {shown}"
        )
    return cast("SignatureMethod", value)


def signature_method_of(headers: Mapping[str, str]) -> SignatureMethod:
    """The V1 hash method a received request asks for, from its ``x-log-signaturemethod``.

    An absent header means ``hmac-sha1`` (the documented default). The value is matched after
    stripping and lower-casing, so a proxy that re-cases header values is harmless.

    Raises:
        UnsupportedSignatureMethod: any other value.
    """
    value = _lower(headers).get("x-log-signaturemethod")
    if value is None:
        return DEFAULT_SIGNATURE_METHOD
    method = value.strip().lower()
    if method not in SIGNATURE_METHODS:
        raise UnsupportedSignatureMethod(
            f"x-log-signaturemethod {value[:32]!r} is unsupported "
            f"(expected {' or '.join(SIGNATURE_METHODS)})"
        )
    return cast("SignatureMethod", method)


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (use datetime.now(UTC))")
    return now.astimezone(UTC)


def format_http_date(now: datetime) -> str:
    """RFC 1123 date for V1's ``Date`` header, e.g. ``Thu, 01 Jan 2026 00:00:00 GMT``."""
    t = _utc(now)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT"
    )


def format_v4_date(now: datetime) -> str:
    """ISO 8601 basic UTC timestamp for V4's ``x-log-date``, e.g. ``20260101T000000Z``."""
    return _utc(now).strftime("%Y%m%dT%H%M%SZ")


def content_md5(body: bytes) -> str:
    """Upper-case hex MD5 of the body as sent; ``""`` for an empty body (header omitted)."""
    if not body:
        return ""
    # Content-MD5 is an integrity checksum mandated by the protocol, not a security primitive.
    return hashlib.md5(body, usedforsecurity=False).hexdigest().upper()


def content_sha256(body: bytes) -> str:
    """Lower-case hex SHA-256 of the body, the value of V4's ``x-log-content-sha256``."""
    if not body:
        return EMPTY_SHA256
    return hashlib.sha256(body).hexdigest()


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _is_signed_extension(name: str, *, meta: bool = False) -> bool:
    """``x-log-*`` and ``x-acs-*`` are signed; ``x-log-meta-*`` only when ``meta`` is true.

    The Python SDK (util.py ``_is_extra_sign_header``) never signs ``x-log-meta-*``; the
    Node.js clients (``@alicloud/gateway-sls``, ``@alicloud/log``, ``aliyun-sdk``) do.
    """
    if name.startswith("x-acs-"):
        return True
    return name.startswith("x-log-") and (meta or not name.startswith("x-log-meta-"))


def v1_string_to_sign(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    sign_meta_headers: bool = False,
) -> str:
    """The V1 StringToSign (sls-protocol.md §3.1), the same for both hash methods.

    ``VERB\\nContent-MD5\\nContent-Type\\nDate\\nCanonicalizedLOGHeaders + CanonicalizedResource``.
    ``Date`` falls back to ``x-log-date`` when absent (what the server validates then).
    ``sign_meta_headers`` includes ``x-log-meta-*`` (the Node.js clients' form).
    """
    lower = _lower(headers)
    date = lower.get("date") or lower.get("x-log-date", "")
    canonical_headers = "".join(
        f"{name}:{lower[name]}\n"
        for name in sorted(lower)
        if name != "x-log-date" and _is_signed_extension(name, meta=sign_meta_headers)
    )
    resource = path
    if query:
        resource += "?" + "&".join(f"{key}={query[key]}" for key in sorted(query))
    return (
        f"{method}\n{lower.get('content-md5', '')}\n{lower.get('content-type', '')}\n"
        f"{date}\n{canonical_headers}{resource}"
    )


def v1_signature(
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
    sign_meta_headers: bool = False,
) -> str:
    """Base64 HMAC (SHA-1 or SHA-256, per ``signature_method``) of the V1 StringToSign.

    Keyed with the access key secret as UTF-8. ``signature_method`` is explicit rather than
    read from ``headers`` so a signer cannot be talked into another hash by a stale header;
    the header must still carry the same value, since it is part of the StringToSign.

    Raises:
        ConfigError: an unknown ``signature_method``.
    """
    digestmod = SIGNATURE_METHODS[validate_signature_method(signature_method)]
    string_to_sign = v1_string_to_sign(
        method, path, query, headers, sign_meta_headers=sign_meta_headers
    )
    digest = hmac.new(secret.encode(), string_to_sign.encode(), digestmod).digest()
    return base64.b64encode(digest).decode("ascii")


def _v4_quote(value: str) -> str:
    # RFC 3986: only A-Z a-z 0-9 - _ . ~ stay literal; "/" and space are encoded (%2F, %20).
    return quote(value, safe="~")


def v4_canonical_request(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> tuple[str, str]:
    """The V4 CanonicalRequest and SignedHeaders (sls-protocol.md §3.2 steps 3-5).

    The payload hash is taken from the ``x-log-content-sha256`` header (empty-body hash if
    absent). Returns ``(canonical_request, signed_headers)``.
    """
    lower = _lower(headers)
    names = sorted(
        name for name in lower if name in ("content-type", "host") or _is_signed_extension(name)
    )
    canonical_headers = "".join(f"{name}:{lower[name].strip()}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_query = "&".join(
        f"{key}={_v4_quote(query[key])}" if query[key] else key for key in sorted(query)
    )
    payload_hash = lower.get("x-log-content-sha256") or EMPTY_SHA256
    canonical_request = (
        f"{method}\n{path}\n{canonical_query}\n{canonical_headers}\n"
        f"{signed_headers}\n{payload_hash}"
    )
    return canonical_request, signed_headers


def v4_string_to_sign(
    region: str, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> str:
    """``SLS4-HMAC-SHA256\\n{x-log-date}\\n{scope}\\n{hex sha256(CanonicalRequest)}``."""
    lower = _lower(headers)
    timestamp = lower.get("x-log-date", "")
    scope = f"{timestamp[:8]}/{region}/{_V4_SERVICE}/{_V4_TERMINATOR}"
    canonical_request, _ = v4_canonical_request(method, path, query, headers)
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{V4_ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def _v4_signing_key(secret: str, date: str, region: str) -> bytes:
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, _V4_SERVICE, _V4_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def v4_signature(  # noqa: PLR0917 - positional signature fixed by interfaces.md
    secret: str,
    region: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> str:
    """Hex V4 signature. ``headers`` must hold ``x-log-date`` and ``x-log-content-sha256``."""
    lower = _lower(headers)
    timestamp = lower.get("x-log-date")
    if not timestamp or len(timestamp) < 8:
        raise ValueError("V4 signing needs an x-log-date header (YYYYMMDDTHHMMSSZ)")
    string_to_sign = v4_string_to_sign(region, method, path, query, headers)
    key = _v4_signing_key(secret, timestamp[:8], region)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def _pop_case_insensitive(headers: MutableMapping[str, str], name: str) -> None:
    for key in [k for k in headers if k.lower() == name]:
        del headers[key]


def _set_header(headers: MutableMapping[str, str], name: str, value: str) -> None:
    """Set ``name`` replacing any existing spelling of it (re-signing must not duplicate)."""
    _pop_case_insensitive(headers, name.lower())
    headers[name] = value


def sign_v1(
    headers: dict[str, str],
    credentials: Credentials,
    method: str,
    path: str,
    query: Mapping[str, str],
    *,
    signature_method: SignatureMethod | None = None,
) -> None:
    """Sign a V1 request in place, the way the official Python SDK does.

    The caller has set ``Date``, ``Content-Type``, ``Content-MD5`` (if the body is non-empty),
    ``x-log-apiversion``, ``x-log-bodyrawsize`` and ``x-log-compresstype``. This adds
    ``x-acs-security-token`` (when the credentials carry one), ``x-log-signaturemethod``,
    ``Authorization`` and, after signing, ``x-log-date`` as an unsigned copy of ``Date`` (the SDK
    does this for proxies that strip ``Date``).

    ``signature_method`` chooses the hash and is written to ``x-log-signaturemethod``; ``None``
    keeps the method already in that header (re-signing a request as it was) or, without one,
    uses ``hmac-sha1``.

    Raises:
        ValueError: no ``Date`` header.
        ConfigError: an unknown ``signature_method`` (or an unknown one already in the header
            when ``signature_method`` is None).
    """
    lower = _lower(headers)
    date = lower.get("date")
    if not date:
        raise ValueError("V1 signing needs a Date header")
    _pop_case_insensitive(headers, "x-log-date")  # a stale copy from an earlier attempt
    _pop_case_insensitive(headers, "authorization")
    token = credentials.security_token
    if not token:
        _pop_case_insensitive(headers, "x-acs-security-token")
    elif lower.get("x-acs-security-token") != token:
        _set_header(headers, "x-acs-security-token", token)
    if signature_method is None:
        signature_method = validate_signature_method(
            lower.get("x-log-signaturemethod", DEFAULT_SIGNATURE_METHOD),
            field="x-log-signaturemethod",
        )
    else:
        signature_method = validate_signature_method(signature_method)
    if lower.get("x-log-signaturemethod") != signature_method:
        _set_header(headers, "x-log-signaturemethod", signature_method)
    signature = v1_signature(
        credentials.access_key_secret,
        method,
        path,
        query,
        headers,
        signature_method=signature_method,
    )
    headers["Authorization"] = f"LOG {credentials.access_key_id}:{signature}"
    headers["x-log-date"] = date


def sign_v4(  # noqa: PLR0917 - positional signature fixed by interfaces.md
    headers: dict[str, str],
    credentials: Credentials,
    method: str,
    path: str,
    query: Mapping[str, str],
    body: bytes,
    region: str,
    now: datetime,
) -> None:
    """Sign a V4 request in place, the way the official Python SDK does.

    The caller has set ``Host`` (the wire value, signed verbatim), ``Content-Type`` and the
    ``x-log-*`` headers. This adds ``x-acs-security-token`` (when present),
    ``x-log-content-sha256``, ``x-log-date`` and ``Authorization``. V4 sends neither ``Date`` nor
    ``Content-MD5`` nor ``x-log-signaturemethod`` (like the SDK).

    Raises:
        ValueError: empty ``region`` or naive ``now``.
    """
    if not region:
        raise ValueError("V4 signing needs a region, e.g. 'cn-hangzhou'")
    timestamp = format_v4_date(now)
    _pop_case_insensitive(headers, "authorization")
    if credentials.security_token:
        _set_header(headers, "x-acs-security-token", credentials.security_token)
    else:
        _pop_case_insensitive(headers, "x-acs-security-token")
    _set_header(headers, "x-log-content-sha256", content_sha256(body))
    _set_header(headers, "x-log-date", timestamp)
    signature = v4_signature(credentials.access_key_secret, region, method, path, query, headers)
    scope = f"{timestamp[:8]}/{region}/{_V4_SERVICE}/{_V4_TERMINATOR}"
    headers["Authorization"] = (
        f"{V4_ALGORITHM} Credential={credentials.access_key_id}/{scope},Signature={signature}"
    )


@dataclass(frozen=True, slots=True)
class ParsedAuthorization:
    """A parsed ``Authorization`` header.

    ``date`` (``YYYYMMDD``) and ``region`` come from the V4 credential scope; both are ``None``
    for V1.
    """

    version: Literal["v1", "v4"]
    access_key_id: str
    signature: str
    date: str | None = None
    region: str | None = None


_V1_AUTH = re.compile(r"LOG (?P<akid>[^:\s]*):(?P<sig>[A-Za-z0-9+/]+={0,2})")
_V4_AUTH = re.compile(
    r"SLS4-HMAC-SHA256 +Credential=(?P<akid>[^/\s,]+)/(?P<date>\d{8})/(?P<region>[^/\s,]+)"
    r"/sls/aliyun_v4_request *, *Signature=(?P<sig>[0-9a-f]{64})"
)


def parse_authorization(value: str) -> ParsedAuthorization:
    """Parse ``LOG {akid}:{base64}`` or ``SLS4-HMAC-SHA256 Credential=.../...,Signature={hex}``.

    Raises:
        ValueError: anything else (the message never echoes the signature).
    """
    value = value.strip()
    match = _V1_AUTH.fullmatch(value)
    if match:
        return ParsedAuthorization("v1", match["akid"], match["sig"])
    match = _V4_AUTH.fullmatch(value)
    if match:
        return ParsedAuthorization(
            "v4", match["akid"], match["sig"], date=match["date"], region=match["region"]
        )
    scheme = value.split(" ", 1)[0][:32]
    raise ValueError(f"malformed Authorization header (scheme {scheme!r})")


def verify_v1(  # noqa: PLR0917 - mirrors the signers' positional order
    secret: str,
    signature: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    meta_headers: Literal["unsigned", "signed", "either"] = "unsigned",
) -> bool:
    """True when ``signature`` (base64) is the V1 signature of the request; constant time.

    The hash is the one the request names in ``x-log-signaturemethod`` (absent: SHA-1); an
    unknown method verifies nothing (False; the emulator checks the method first to answer
    ``InvalidSignatureMethod``). ``meta_headers`` says how ``x-log-meta-*`` headers may have
    been signed: excluded (Python SDK), included (Node.js clients) or either; with no such
    header the forms are the same string and one HMAC is computed.
    """
    try:
        signature_method = signature_method_of(headers)
    except UnsupportedSignatureMethod:
        return False
    forms = {"unsigned": (False,), "signed": (True,), "either": (False, True)}[meta_headers]
    if len(forms) > 1 and not any(name.lower().startswith("x-log-meta-") for name in headers):
        forms = forms[:1]
    matched = False
    for sign_meta in forms:
        expected = v1_signature(
            secret,
            method,
            path,
            query,
            headers,
            signature_method=signature_method,
            sign_meta_headers=sign_meta,
        )
        # No early exit: both forms cost the same whatever matches first.
        matched |= hmac.compare_digest(expected.encode(), signature.encode())
    return matched


def verify_v4(  # noqa: PLR0917 - mirrors the signers' positional order
    secret: str,
    signature: str,
    region: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
) -> bool:
    """True when ``signature`` (hex) is the V4 signature of the request; constant time."""
    try:
        expected = v4_signature(secret, region, method, path, query, headers)
    except ValueError:
        return False
    return hmac.compare_digest(expected.encode(), signature.lower().encode())


def verify_request(  # noqa: PLR0917 - mirrors the signers' positional order
    auth: ParsedAuthorization,
    secret: str,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    *,
    meta_headers: Literal["unsigned", "signed", "either"] = "unsigned",
) -> bool:
    """Server-side check of a parsed ``Authorization`` against the received request parts.

    For V4 the scope date must also equal the first 8 characters of ``x-log-date``. ``headers``
    are the received headers (``Host`` verbatim); ``query`` holds form-decoded values. V1
    hashes with the request's own ``x-log-signaturemethod``; ``meta_headers`` as in
    ``verify_v1`` (V4 never signs ``x-log-meta-*``, in every SDK).
    """
    if auth.version == "v1":
        return verify_v1(
            secret, auth.signature, method, path, query, headers, meta_headers=meta_headers
        )
    timestamp = _lower(headers).get("x-log-date", "")
    if auth.date is None or auth.region is None or timestamp[:8] != auth.date:
        return False
    return verify_v4(secret, auth.signature, auth.region, method, path, query, headers)


def utc_now() -> datetime:
    """The current time as an aware UTC datetime (the default ``now`` of request builders)."""
    return datetime.now(UTC)
