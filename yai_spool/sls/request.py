"""Building a signed PutLogs HTTP request (pure: no network I/O).

Owns the endpoint grammar, project/logstore name rules, the URL and Host forms, and the exact
header set the official Python SDK sends (sls-protocol.md §1-§3). The client only has to send
``PreparedRequest.method``/``url``/``headers``/``body`` as they are.

Invariants:

- URL: virtual-host style ``{scheme}://{project}.{host}[:port]{path}`` for a host name, with
  ``Host: {project}.{host}[:port]``. For an IP literal or ``localhost`` the URL dials the
  endpoint itself and ``Host`` is ``{project}.{host}`` without a port, as the SDK sends it;
  the project always travels in the Host header's first label.
- Path ``/logstores/{logstore}/shards/lb``, or ``/shards/route?key=...`` with a hash key:
  form-encoded on the wire (``user+42``), the DECODED value signed.
- Headers, V1: ``User-Agent, x-log-bodyrawsize, Content-Type, [x-log-compresstype],
  x-log-apiversion, Host, [x-acs-security-token], x-log-signaturemethod, Date, [Content-MD5],
  Authorization, x-log-date``, where ``x-log-signaturemethod`` is ``hmac-sha1`` (default) or
  ``hmac-sha256`` (``signature_method=``) and names the HMAC of the signature; V4: the same
  without ``x-log-signaturemethod``/``Date``/``Content-MD5`` and with
  ``x-log-content-sha256`` and ISO ``x-log-date`` (signed).
  ``Content-Length`` is left to the HTTP library.
- ``repr(PreparedRequest)`` never shows the Authorization value or the STS token.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, TypedDict, Unpack
from urllib.parse import urlencode, urlsplit

from yai_spool.sls.compression import Compression, compress
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import encode_log_group
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.model import LogGroup
from yai_spool.sls.signing import (
    API_VERSION,
    DEFAULT_SIGNATURE_METHOD,
    SignatureMethod,
    content_md5,
    format_http_date,
    sign_v1,
    sign_v4,
    utc_now,
    validate_signature_method,
)

__all__ = [
    "Destination",
    "Endpoint",
    "PreparedRequest",
    "RequestOptions",
    "SignatureMethod",
    "SignatureVersion",
    "build_put_logs_request",
    "build_put_logs_request_from_raw",
    "default_user_agent",
    "is_ip_literal",
    "region_from_host",
    "resign",
    "validate_logstore",
    "validate_project",
]

SignatureVersion = Literal["v1", "v4"]
CONTENT_TYPE = "application/x-protobuf"


@functools.cache
def _package_version() -> str:
    try:
        # importlib.metadata costs ~10 ms to import: only when the first request is signed,
        # never in a process that merely logs (``import yai_spool`` stays cheap).
        from importlib.metadata import version  # noqa: PLC0415

        return version("yai-spool")
    except Exception:  # not installed (running from a checkout): any version string will do
        return "0"


def default_user_agent() -> str:
    """``yai-spool/<version>``: the ``User-Agent`` of our requests (computed once)."""
    return f"yai-spool/{_package_version()}"


def __getattr__(name: str) -> str:
    # DEFAULT_USER_AGENT stays importable, resolved on first use (PEP 562).
    if name == "DEFAULT_USER_AGENT":
        return default_user_agent()
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


_PROJECT_RE = re.compile(r"[a-z0-9-]{3,63}")
_LOGSTORE_RE = re.compile(r"[a-z0-9_-]{2,63}")
_HOST_RE = re.compile(r"[A-Za-z0-9.-]+")


def validate_project(project: str) -> str:
    """Return ``project`` if it is a valid SLS project name (3-63 of ``a-z 0-9 -``).

    Raises:
        ConfigError: naming the field.
    """
    return _valid_name(
        "project", project, _PROJECT_RE, "3-63 characters of lower-case letters, digits and hyphens"
    )


def validate_logstore(logstore: str) -> str:
    """Return ``logstore`` if it is a valid name (2-63 of ``a-z 0-9 - _``).

    Raises:
        ConfigError: naming the field.
    """
    return _valid_name(
        "logstore",
        logstore,
        _LOGSTORE_RE,
        "2-63 characters of lower-case letters, digits, hyphens and underscores",
    )


def _valid_name(field: str, value: str, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{field} {value!r} is invalid: {rule}")
    return value


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An SLS endpoint: scheme, host (IPv6 without brackets) and an explicit port or None."""

    scheme: str
    host: str
    port: int | None = None

    @classmethod
    def parse(cls, value: str) -> Endpoint:
        """Parse ``cn-hangzhou.log.aliyuncs.com``, ``https://host``, ``http://127.0.0.1:8080``.

        The scheme defaults to ``http`` (like the SDK); an explicit port is kept; any path,
        query or fragment is dropped.

        Raises:
            ConfigError: empty value, unsupported scheme, bad host or port.
        """
        if not isinstance(value, str) or not value.strip():
            raise ConfigError("endpoint must be a non-empty string")
        text = value.strip()
        if "://" not in text:
            text = "http://" + text
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"endpoint {value!r} is invalid: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ConfigError(f"endpoint {value!r}: scheme must be http or https")
        if parts.username is not None or parts.password is not None:
            raise ConfigError("endpoint must not contain user information")
        host = (parts.hostname or "").lower()
        if not host:
            raise ConfigError(f"endpoint {value!r} has no host")
        if not is_ip_literal(host) and not _HOST_RE.fullmatch(host):
            raise ConfigError(f"endpoint {value!r} has an invalid host")
        if port == 0:
            raise ConfigError(f"endpoint {value!r}: port 0 is not dialable")
        return cls(scheme, host, port)

    @property
    def is_ip(self) -> bool:
        """True for an IPv4/IPv6 literal or ``localhost``: dialled directly, not as a subdomain."""
        return self.host == "localhost" or is_ip_literal(self.host)

    @property
    def netloc(self) -> str:
        """``host[:port]`` as it appears in a URL (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def is_ip_literal(host: str) -> bool:
    """True for an IPv4 or IPv6 address literal (no brackets, no port); not for names."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Destination:
    """Where logs go: endpoint, project and logstore (names validated on construction)."""

    endpoint: Endpoint
    project: str
    logstore: str

    def __post_init__(self) -> None:
        if isinstance(self.endpoint, str):
            object.__setattr__(self, "endpoint", Endpoint.parse(self.endpoint))
        elif not isinstance(self.endpoint, Endpoint):
            raise ConfigError("endpoint must be an Endpoint or a string")
        validate_project(self.project)
        validate_logstore(self.logstore)

    @property
    def host_header(self) -> str:
        """The ``Host`` header: ``{project}.{host}``, plus ``:port`` for a non-IP endpoint."""
        endpoint = self.endpoint
        return f"{self.project}.{endpoint.host if endpoint.is_ip else endpoint.netloc}"

    @property
    def base_url(self) -> str:
        """``scheme://netloc`` actually dialled (the endpoint itself for IP/localhost)."""
        endpoint = self.endpoint
        host = endpoint.netloc if endpoint.is_ip else f"{self.project}.{endpoint.netloc}"
        return f"{endpoint.scheme}://{host}"


_MASKED_HEADERS = frozenset({"authorization", "x-acs-security-token"})


@dataclass(frozen=True)
class PreparedRequest:
    """A signed PutLogs request, ready to send as is.

    ``headers`` includes ``Host``; ``path``/``query`` (decoded) and the signing parameters are
    kept so ``resign`` can refresh the date and signature for a retry without recompressing.
    """

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = field(repr=False)
    raw_size: int
    host_header: str
    path: str = ""
    query: tuple[tuple[str, str], ...] = ()
    signature_version: SignatureVersion = "v1"
    region: str | None = None
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD

    def __repr__(self) -> str:
        shown = {
            name: ("****" if name.lower() in _MASKED_HEADERS else value)
            for name, value in self.headers.items()
        }
        return (
            f"PreparedRequest(method={self.method!r}, url={self.url!r}, headers={shown!r}, "
            f"body=<{len(self.body)} bytes>, raw_size={self.raw_size})"
        )


_REGION_HOST = re.compile(r"([a-z0-9-]+?)(?:-intranet|-share|-vpc)?\.log\.aliyuncs\.com")


def region_from_host(host: str) -> str | None:
    """``cn-hangzhou(-intranet).log.aliyuncs.com`` -> ``cn-hangzhou``; None if not recognised."""
    match = _REGION_HOST.fullmatch(host.lower())
    return match.group(1) if match else None


class RequestOptions(TypedDict, total=False):
    """The keywords of :func:`build_put_logs_request_from_raw` (and of the group form)."""

    compression: Compression
    signature_version: SignatureVersion
    signature_method: SignatureMethod
    region: str | None
    hash_key: str | None
    now: datetime | None
    user_agent: str | None


def build_put_logs_request(
    destination: Destination,
    group: LogGroup,
    credentials: Credentials,
    **options: Unpack[RequestOptions],
) -> PreparedRequest:
    """Encode ``group`` and build the signed request (see ``build_put_logs_request_from_raw``,
    which takes the same keywords).

    Raises:
        EncodeError: the group cannot be encoded.
        ConfigError: see ``build_put_logs_request_from_raw``.
    """
    return build_put_logs_request_from_raw(
        destination, encode_log_group(group), credentials, **options
    )


def build_put_logs_request_from_raw(
    destination: Destination,
    raw: bytes,
    credentials: Credentials,
    *,
    compression: Compression = Compression.LZ4,
    signature_version: SignatureVersion = "v1",
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
    region: str | None = None,
    hash_key: str | None = None,
    now: datetime | None = None,
    user_agent: str | None = None,
) -> PreparedRequest:
    """Build the signed PutLogs request for an already-encoded LogGroup.

    Args:
        destination: endpoint, project and logstore.
        raw: the encoded LogGroup (uncompressed); its length becomes ``x-log-bodyrawsize``.
        credentials: signing credentials (the STS token, if any, is sent and signed).
        compression: body compression; ``NONE`` omits ``x-log-compresstype``.
        signature_version: ``"v1"`` (the SDK default) or ``"v4"``.
        signature_method: V1's HMAC, ``"hmac-sha1"`` (the SDK default) or ``"hmac-sha256"``
            (what the OpenAPI gateway sends); sent as ``x-log-signaturemethod``. Ignored by V4,
            which is always HMAC-SHA256 and sends no such header.
        region: V4 region; inferred from ``*.log.aliyuncs.com`` endpoints when None.
        hash_key: route to a shard by key (``/shards/route?key=``) instead of load balancing.
        now: signing time (aware datetime); the current UTC time when None.
        user_agent: ``User-Agent`` header; None: :func:`default_user_agent`.

    Raises:
        ConfigError: V4 without a determinable region, unknown signature version or method,
            naive ``now``.
    """
    compression = Compression(compression)
    if signature_version not in ("v1", "v4"):
        raise ConfigError(f"signature_version must be 'v1' or 'v4', not {signature_version!r}")
    signature_method = validate_signature_method(signature_method)
    if signature_version == "v4":
        region = region or region_from_host(destination.endpoint.host)
        if not region:
            raise ConfigError("signature_version 'v4' needs a region, e.g. region='cn-hangzhou'")
    path = f"/logstores/{destination.logstore}/shards/"
    query: tuple[tuple[str, str], ...] = ()
    if hash_key is None:
        path += "lb"
        url = destination.base_url + path
    else:
        path += "route"
        query = (("key", hash_key),)
        url = f"{destination.base_url}{path}?{urlencode(query)}"
    body = compress(compression, raw)
    headers: dict[str, str] = {
        "User-Agent": user_agent if user_agent is not None else default_user_agent(),
        "x-log-bodyrawsize": str(len(raw)),
        "Content-Type": CONTENT_TYPE,
    }
    if compression.header_value is not None:
        headers["x-log-compresstype"] = compression.header_value
    headers["x-log-apiversion"] = API_VERSION
    headers["Host"] = destination.host_header
    prepared = PreparedRequest(
        method="POST",
        url=url,
        headers=headers,
        body=body,
        raw_size=len(raw),
        host_header=destination.host_header,
        path=path,
        query=query,
        signature_version=signature_version,
        region=region if signature_version == "v4" else None,
        signature_method=signature_method,
    )
    _sign(prepared, credentials, now)
    return prepared


def _sign(prepared: PreparedRequest, credentials: Credentials, now: datetime | None) -> None:
    try:
        when = utc_now() if now is None else now
        headers = prepared.headers
        query = dict(prepared.query)
        if prepared.signature_version == "v1":
            headers.pop("x-log-signaturemethod", None)
            headers.pop("Date", None)
            headers.pop("Content-MD5", None)
            headers.pop("x-acs-security-token", None)
            # The SDK's order: signaturemethod, Date, Content-MD5, then Authorization, x-log-date.
            if credentials.security_token:
                headers["x-acs-security-token"] = credentials.security_token
            headers["x-log-signaturemethod"] = prepared.signature_method
            headers["Date"] = format_http_date(when)
            md5 = content_md5(prepared.body)
            if md5:
                headers["Content-MD5"] = md5
            sign_v1(
                headers,
                credentials,
                prepared.method,
                prepared.path,
                query,
                signature_method=prepared.signature_method,
            )
        else:
            if not prepared.region:
                raise ConfigError("signature_version 'v4' needs a region")
            sign_v4(
                headers,
                credentials,
                prepared.method,
                prepared.path,
                query,
                prepared.body,
                prepared.region,
                when,
            )
    except ValueError as exc:  # naive `now`
        raise ConfigError(str(exc)) from exc


def resign(
    prepared: PreparedRequest, credentials: Credentials, *, now: datetime | None = None
) -> PreparedRequest:
    """A copy of ``prepared`` with a fresh date and signature (for a retry: V1 ``Date`` must be
    within 15 minutes of server time). The body is reused, not recompressed."""
    copy = replace(prepared, headers=dict(prepared.headers))
    _sign(copy, credentials, now)
    return copy
