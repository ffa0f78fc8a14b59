"""The PutLogs checks the emulator makes, in the order the service is assumed to make them.

Owns: turning one parsed HTTP request into either an accepted batch (decompressed LogGroup
bytes plus the stats ``scan.scan_log_group`` took from them) or a :class:`Rejection`
carrying the SLS error code.
It uses the protocol core for every wire detail (``signing``, ``compression``,
``encoding``, ``errors``) and adds only the server-side policy: which header is required,
which limit applies, which error code answers it (all from ``EmulatorConfig``).

Order of checks (sls-protocol.md §3, §5, §6, checklist §8):
 1. destination: project from the first Host label (``InvalidHost`` if the host is a bare
    IP, i.e. carries no project), ``ProjectNotExist``/``LogStoreNotExist`` if configured;
 2. identity (when ``verify_signatures``): Authorization present (``missing_auth_code``),
    well-formed (``Unauthorized``), V1 signature method known (``InvalidSignatureMethod``),
    key id known (``unknown_key_code``), STS token registered for that key id
    (``Unauthorized``), signature (``SignatureNotMatch``; V1 hashed with the request's own
    ``x-log-signaturemethod``, ``x-log-meta-*`` per ``v1_meta_headers``), V4 payload hash
    (``SignatureNotMatch``), then request time: V1 ``Date`` falling back to ``x-log-date``,
    V4 ``x-log-date`` (``MissingDate``/``InvalidDateFormat``/``skew_error_code``). The time
    check comes after the signature so a forged request learns nothing about the clock;
 3. body integrity: ``Content-Type`` present for a non-empty body (``MissingContentType``,
    unless ``missing_content_type="accept"``), ``Content-MD5`` (``InvalidContentMD5``),
    ``x-log-bodyrawsize`` present (``MissingBodyRawSize``), an integer >= 0
    (``InvalidBodyRawSize``), within ``max_body_bytes`` (``PostBodyTooLarge``), known compress
    type (``InvalidCompressType``; ``gzip`` is zlib unless ``gzip_compress_type="reject"``),
    decompresses to exactly rawsize (``PostBodyInvalid``), decodes as LogGroup
    (``PostBodyInvalid``);
 4. content limits: log count, topic, source, ``time_ns`` range, log time window (if set),
    keys (reserved -> ``reserved_key_code``; then length/pattern -> ``invalid_key_code``), value
    size (``value_too_large_code``).

Invariants: nothing here writes or waits; the only state kept between requests is a
:class:`KeyChecker`'s cache of valid keys, owned by the caller. Error messages never include
a secret, a token or a signature.
"""

from __future__ import annotations

import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from yai_spool.emulator.config import EmulatorConfig
from yai_spool.emulator.httpserver import HttpRequest
from yai_spool.emulator.scan import GroupStats, scan_log_group
from yai_spool.sls.compression import Compression, decompress, parse_compress_type
from yai_spool.sls.encoding import decode_log_group
from yai_spool.sls.errors import CompressionError, DecodeError, ErrorCode
from yai_spool.sls.model import LogGroup
from yai_spool.sls.request import is_ip_literal
from yai_spool.sls.signing import (
    UnsupportedSignatureMethod,
    content_md5,
    content_sha256,
    parse_authorization,
    signature_method_of,
    verify_request,
)

__all__ = [
    "Accepted",
    "AuthInfo",
    "Destination",
    "KeyChecker",
    "Rejection",
    "check_put_logs",
    "route",
]

_ROUTE = re.compile(r"/logstores/(?P<logstore>[^/]+)(?P<suffix>/shards/(?:lb|route))?/?")


class Rejection(Exception):
    """An SLS error answer: ``code`` (errorCode) and ``message`` (errorMessage)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a PutLogs request writes: project (first Host label) and logstore (path)."""

    project: str
    logstore: str


@dataclass(slots=True)
class AuthInfo:
    """What a request summary may record about identity (never a secret or signature)."""

    version: str | None = None
    access_key_id: str | None = None


@dataclass(slots=True)
class Accepted:
    """A body that passed step 3: decompressed bytes and their stats."""

    raw: bytes
    stats: GroupStats
    group: LogGroup | None  # set when the slow path decoded it anyway
    compression: Compression
    raw_size: int

    def decoded(self) -> LogGroup:
        if self.group is None:
            self.group = decode_log_group(self.raw)
        return self.group


def route(request: HttpRequest) -> Destination | None:
    """The PutLogs destination of a request, or None when the path is not a PutLogs path.

    Raises ``Rejection`` when the path is PutLogs-shaped but the Host names no project.
    """
    match = _ROUTE.fullmatch(request.path)
    if match is None:
        return None
    logstore = unquote(match["logstore"])
    host = request.host
    if not host:
        raise Rejection(ErrorCode.MissingHost, "the Host header is missing")
    host = _strip_port(host)
    if is_ip_literal(host):
        raise Rejection(
            ErrorCode.InvalidHost,
            f"Host {host!r} carries no project; send Host: {{project}}.{host}",
        )
    project = host.split(".", 1)[0]
    if not project:
        raise Rejection(ErrorCode.InvalidHost, f"Host {request.host!r} carries no project")
    return Destination(project, logstore)


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [v6]:port
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def check_destination(config: EmulatorConfig, dest: Destination) -> None:
    if config.projects is None:
        return
    logstores = config.projects.get(dest.project)
    if logstores is None:
        raise Rejection(ErrorCode.ProjectNotExist, f"Project {dest.project} does not exist")
    if logstores and dest.logstore not in logstores:
        raise Rejection(ErrorCode.LogStoreNotExist, f"logstore {dest.logstore} does not exist")


def authenticate(config: EmulatorConfig, request: HttpRequest, now: float) -> AuthInfo:
    """Check identity and request time; returns what the summary may record (no secrets)."""
    info = AuthInfo()
    headers = request.headers
    authorization = headers.get("authorization")
    if authorization is None:
        if not config.verify_signatures:
            return info
        raise Rejection(config.missing_auth_code, "the Authorization header is missing")
    try:
        auth = parse_authorization(authorization)
    except ValueError as exc:
        if not config.verify_signatures:
            return info
        raise Rejection(ErrorCode.Unauthorized, str(exc)) from None
    info.version, info.access_key_id = auth.version, auth.access_key_id
    if not config.verify_signatures:
        return info
    if auth.version == "v1":
        # Before the key lookup: a method the service does not know is a malformed request,
        # whoever sends it (V4 has no such header; its algorithm is in Authorization).
        try:
            signature_method_of(headers)
        except UnsupportedSignatureMethod as exc:
            raise Rejection(ErrorCode.InvalidSignatureMethod, str(exc)) from None

    secret = config.access_keys.get(auth.access_key_id)
    if secret is None:
        raise Rejection(config.unknown_key_code, "the AccessKeyId is not registered")
    token = headers.get("x-acs-security-token")
    temporary = auth.access_key_id in config.sts_tokens.values()
    if token is not None:
        if config.sts_tokens.get(token) != auth.access_key_id:
            raise Rejection(ErrorCode.Unauthorized, "the security token is not valid")
    elif temporary:
        raise Rejection(ErrorCode.Unauthorized, "this AccessKeyId needs a security token")

    signed_headers = headers
    if "host" not in headers:  # absolute-form target without a Host header
        signed_headers = {**headers, "host": request.host}
    if not verify_request(
        auth,
        secret,
        request.method,
        request.path,
        request.query,
        signed_headers,
        meta_headers=config.v1_meta_headers,
    ):
        raise Rejection(ErrorCode.SignatureNotMatch, "the request signature does not match")
    if auth.version == "v4":
        sha = headers.get("x-log-content-sha256", "")
        if not hmac.compare_digest(sha.lower(), content_sha256(request.body)):
            raise Rejection(ErrorCode.SignatureNotMatch, "x-log-content-sha256 != sha256(body)")

    request_time = _request_time(auth.version, headers)
    if abs(request_time - now) > config.max_skew_seconds:
        raise Rejection(
            config.skew_error_code,
            f"request time differs from server time by {abs(request_time - now):.0f}s "
            f"(max {config.max_skew_seconds:.0f}s)",
        )
    return info


def _request_time(version: str, headers: dict[str, str]) -> float:
    if version == "v4":
        value = headers.get("x-log-date")
        if not value:
            raise Rejection(ErrorCode.MissingDate, "x-log-date is missing")
        try:
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise Rejection(
                ErrorCode.InvalidDateFormat, "x-log-date is not YYYYMMDDTHHMMSSZ"
            ) from None
    # V1: Date, or x-log-date when a proxy stripped Date (DOC; aliyun-log-python-sdk#78).
    value = headers.get("date") or headers.get("x-log-date")
    if not value:
        raise Rejection(ErrorCode.MissingDate, "neither Date nor x-log-date is present")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise Rejection(ErrorCode.InvalidDateFormat, "Date is not an RFC 1123 date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def read_body(config: EmulatorConfig, request: HttpRequest) -> Accepted:
    """Integrity, size, compression and protobuf checks (step 3)."""
    headers = request.headers
    if request.body_too_large:
        raise Rejection(ErrorCode.PostBodyTooLarge, "the request body is too large")
    if request.body and "content-type" not in headers and config.missing_content_type == "reject":
        raise Rejection(
            ErrorCode.MissingContentType,
            "Content-Type does not exist in http header when body is not empty",
        )
    md5 = headers.get("content-md5")
    if config.check_content_md5 and md5 is not None and md5.upper() != content_md5(request.body):
        raise Rejection(ErrorCode.InvalidContentMD5, "Content-MD5 does not match the body")
    raw_header = headers.get("x-log-bodyrawsize")
    if raw_header is None:
        raise Rejection(ErrorCode.MissingBodyRawSize, "x-log-bodyrawsize is missing")
    if not raw_header.strip().isdigit():
        raise Rejection(ErrorCode.InvalidBodyRawSize, f"x-log-bodyrawsize {raw_header[:32]!r}")
    raw_size = int(raw_header)
    if raw_size > config.max_body_bytes:
        raise Rejection(
            ErrorCode.PostBodyTooLarge,
            f"raw body of {raw_size} bytes exceeds {config.max_body_bytes}",
        )
    kind = _compress_type(config, headers.get("x-log-compresstype"))
    try:
        raw = decompress(kind, request.body, raw_size)
    except CompressionError as exc:
        raise Rejection(ErrorCode.PostBodyInvalid, str(exc)) from None
    try:
        stats, group = scan_log_group(raw, config.max_value_bytes)
    except DecodeError as exc:
        raise Rejection(ErrorCode.PostBodyInvalid, f"body is not a LogGroup: {exc}") from None
    return Accepted(raw=raw, stats=stats, group=group, compression=kind, raw_size=raw_size)


def _compress_type(config: EmulatorConfig, header: str | None) -> Compression:
    """The codec of ``x-log-compresstype``; ``gzip`` is the gateways' name for zlib bytes."""
    if header is not None and header.strip().lower() == "gzip":
        if config.gzip_compress_type == "zlib":
            return Compression.DEFLATE
        raise Rejection(
            ErrorCode.InvalidCompressType, f"x-log-compresstype {header!r} is unsupported"
        )
    try:
        return parse_compress_type(header)
    except ValueError as exc:
        raise Rejection(ErrorCode.InvalidCompressType, str(exc)) from None


_MAX_GOOD_KEYS = 100_000  # bounded: a key-per-log workload must not grow the cache forever


class KeyChecker:
    """The content-key rules of one config, with the keys already found valid under them.

    Keys repeat across logs and requests, so each one is checked once; the owner (one
    ``Emulator``) keeps the checker for its config's lifetime.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        pattern = config.key_pattern
        self._pattern = re.compile(pattern) if pattern is not None else None
        self._good: set[str] = set()

    def check(self, keys: frozenset[str]) -> None:
        """Raise ``Rejection`` for the first reserved, empty, too long or off-pattern key."""
        config = self._config
        for key in keys - self._good:
            if key in config.reserved_keys or key.startswith(config.reserved_key_prefixes):
                raise Rejection(config.reserved_key_code, f"content key {key[:64]!r} is reserved")
            if not key or len(key.encode()) > config.max_key_bytes:
                raise Rejection(
                    config.invalid_key_code,
                    f"content key length must be 1..{config.max_key_bytes} bytes",
                )
            if self._pattern is not None and self._pattern.fullmatch(key) is None:
                raise Rejection(config.invalid_key_code, f"content key {key[:64]!r} is not allowed")
            if len(self._good) < _MAX_GOOD_KEYS:
                self._good.add(key)


def check_limits(
    config: EmulatorConfig, stats: GroupStats, now: float, keys: KeyChecker | None = None
) -> None:
    """Content limits (step 4), over the scan's stats (sizes in bytes).

    ``keys`` is the caller's checker for ``config`` (its cache of valid keys); without one a
    fresh checker is used.
    """
    if stats.log_count > config.max_logs_per_request:
        raise Rejection(
            config.too_many_logs_code,
            f"{stats.log_count} logs in one request exceed {config.max_logs_per_request}",
        )
    if len(stats.topic.encode()) > config.max_topic_bytes:
        raise Rejection(ErrorCode.InvalidTopic, f"topic exceeds {config.max_topic_bytes} bytes")
    if len(stats.source.encode()) > config.max_source_bytes:
        raise Rejection(ErrorCode.InvalidSource, f"source exceeds {config.max_source_bytes} bytes")
    if stats.max_time_ns > 999_999_999:
        raise Rejection(ErrorCode.InvalidTimestamp, f"time_ns {stats.max_time_ns} > 999999999")
    window = config.max_log_time_skew_seconds
    if (
        window is not None
        and stats.log_count
        and (now - stats.min_time > window or stats.max_time - now > window)
    ):
        raise Rejection(
            ErrorCode.InvalidTimestamp,
            f"a log time is more than {window:.0f}s away from server time",
        )
    (keys or KeyChecker(config)).check(stats.keys)
    if stats.max_value_bytes > config.max_value_bytes:
        raise Rejection(
            config.value_too_large_code,
            f"a content value of {stats.max_value_bytes} bytes exceeds {config.max_value_bytes}",
        )


def check_put_logs(
    config: EmulatorConfig,
    request: HttpRequest,
    dest: Destination,
    now: float | None = None,
    *,
    keys: KeyChecker | None = None,
) -> tuple[AuthInfo, Accepted]:
    """Run every check; returns what was accepted or raises ``Rejection``.

    ``keys``: the caller's :class:`KeyChecker` for ``config``, so valid keys stay cached
    across requests.
    """
    now = time.time() if now is None else now
    check_destination(config, dest)
    auth = authenticate(config, request, now)
    accepted = read_body(config, request)
    check_limits(config, accepted.stats, now, keys)
    return auth, accepted
