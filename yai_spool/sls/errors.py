"""The exception tree, the SLS error-code table and THE response classification.

This is the only module that knows SLS error codes and what they mean. The emulator answers with
``ErrorCode`` members and ``DEFAULT_STATUS``; the client raises ``SLSError`` built by
``parse_error_response``; the flusher decides what to do from ``classify_response`` /
``classify_exception`` and nothing else.

Exception tree::

    YaiSpoolError(Exception)
    ├── ConfigError(YaiSpoolError, ValueError)        bad names, endpoints, missing credentials
    ├── CredentialsError(YaiSpoolError)               a credentials provider could not deliver
    ├── ProtocolError(YaiSpoolError)                  bytes that do not follow the wire format
    │   ├── EncodeError(ProtocolError, ValueError)    a LogGroup that cannot be encoded
    │   ├── DecodeError(ProtocolError, ValueError)    a body that is not a valid LogGroup
    │   └── CompressionError(ProtocolError, ValueError)  corrupt body or raw-size mismatch
    └── ShipError(YaiSpoolError)                      one PutLogs attempt failed
        ├── TransportError(ShipError)                 no HTTP response was obtained
        │   ├── ConnectError                          connect refused / DNS / TLS handshake
        │   ├── RequestTimeout  (alias TimeoutError_) connect, read, write or pool timeout
        │   └── ConnectionLost                        the connection dropped mid-request
        └── SLSError(ShipError)                       the server answered with a non-200 status

Invariants:

- ``str()`` of every exception here is built from non-secret parts only (status, code, server
  message, request id); no access key secret or STS token is ever stored in an exception.
- ``classify_response`` is total: every (status, code) pair maps to exactly one ``Outcome``.

Outcomes (see ``classify_response``):

- ``DELIVERED``: status 200, and only 200 (201/204 are not success for SLS clients).
- ``RETRY``: transient; retry with backoff. 5xx (whatever the code), ``InternalServerError``,
  ``ServerBusy``, ``RequestTimeout``, transport errors, 408, non-200 2xx, and clock skew
  (``RequestTimeExpired``/``RequestTimeTooSkewed``): every attempt is re-signed with a fresh
  date, so a skew caused by a delayed retry heals by itself; a wrong local clock does not, and
  shows up as a retry loop whose last error names the code. ``InvalidContentMD5`` is also a
  retry: the body was damaged on the way, the next attempt sends fresh bytes.
- ``THROTTLED``: quota; back off harder. ``WriteQuotaExceed``, ``ShardWriteQuotaExceed``,
  ``ExceedQuota``, any 429, and a 403 whose message mentions a quota/QPS limit
  ("Inflow Quota Exceed", "Write QPS Exceed").
- ``CREDENTIALS``: keep the data, back off long, surface loudly. Identity or configuration is
  wrong and only a human fixes it: ``Unauthorized``, ``SignatureNotMatch``,
  ``InvalidAccessKeyId*``, ``SecurityToken*Expired``, ``MissAccessKeyId``, ``ProjectNotExist``,
  ``LogStoreNotExist`` (a typo in the destination must not dead-letter the logs), the
  request-shape codes that only a broken client or proxy produces (missing/invalid headers such
  as ``MissingContentType``, ``InvalidCompressType``, ``MissingAPIVersion``), 3xx, and 401, 403,
  404, 405, 407 with an unknown code. ``ConfigError`` and ``CredentialsError`` also land here.
- ``REJECTED``: this data will never be accepted; bisect the batch and dead-letter the poison.
  ``InvalidParameter``/``ParameterInvalid``, ``PostBodyInvalid``, ``InvalidLogSize``,
  ``InvalidTimestamp``, ``InvalidTopic``, ``InvalidSource``, ``PostBodyTooLarge``,
  ``InvalidKey``, ``InvalidValue``, ``InvalidBodyRawSize``, any other 4xx with an unknown code
  (400, 413, 422, ...), and ``EncodeError`` raised while building the request.

Emulator choices (codes the docs do not pin down; see ``DEFAULT_STATUS``):

- undecodable protobuf body or corrupt compressed body or decompressed size != rawsize
  -> ``PostBodyInvalid`` 400; unknown ``x-log-compresstype`` -> ``InvalidCompressType`` 400;
  non-integer/negative ``x-log-bodyrawsize`` -> ``InvalidBodyRawSize`` 400.
- raw body above the limit -> ``PostBodyTooLarge`` 413; too many logs -> ``InvalidLogSize`` 400.
- Content-MD5 mismatch -> ``InvalidContentMD5`` 400; bad content key -> ``InvalidKey`` 400;
  value over the size limit -> ``InvalidValue`` 400.
- ``RequestTimeout`` -> 500 (undocumented for PutLogs; 500 keeps every official client retrying).
- V1 ``x-log-signaturemethod`` other than ``hmac-sha1``/``hmac-sha256`` ->
  ``InvalidSignatureMethod`` 400 (the name the DOC common-error table gives that case).
- non-empty body without ``Content-Type`` -> ``MissingContentType`` 400 (DOC common table;
  the emulator can be told to accept it, ``EmulatorConfig.missing_content_type``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "DEFAULT_STATUS",
    "CompressionError",
    "ConfigError",
    "ConnectError",
    "ConnectionLost",
    "CredentialsError",
    "DecodeError",
    "EncodeError",
    "ErrorCode",
    "Outcome",
    "ProtocolError",
    "RequestTimeout",
    "SLSError",
    "ShipError",
    "TimeoutError_",
    "TransportError",
    "YaiSpoolError",
    "classify_exception",
    "classify_response",
    "parse_error_response",
]


class YaiSpoolError(Exception):
    """Root of every exception raised by yai_spool."""


class ConfigError(YaiSpoolError, ValueError):
    """Invalid configuration: names, endpoints, missing or malformed credentials."""


class CredentialsError(YaiSpoolError):
    """A credentials provider could not deliver valid credentials (e.g. refresh failed)."""


class ProtocolError(YaiSpoolError):
    """Bytes or values that do not follow the SLS wire format."""


class EncodeError(ProtocolError, ValueError):
    """A LogGroup that cannot be encoded (value out of range, unencodable string)."""


class DecodeError(ProtocolError, ValueError):
    """A body that is not a valid LogGroup (garbage, truncated, wrong wire type, bad UTF-8)."""


class CompressionError(ProtocolError, ValueError):
    """A compressed body that is corrupt or does not decompress to exactly the raw size."""


class ShipError(YaiSpoolError):
    """One PutLogs attempt failed."""


class TransportError(ShipError):
    """No HTTP response was obtained: the request may or may not have reached the server."""


class ConnectError(TransportError):
    """The connection could not be established (refused, DNS, TLS handshake)."""


class RequestTimeout(TransportError):
    """A connect, read, write or pool timeout expired."""


# The contract's spelling; "RequestTimeout" is the real name (it is not the builtin TimeoutError).
TimeoutError_ = RequestTimeout


class ConnectionLost(TransportError):
    """The connection was closed or reset while the request was in flight."""


# Server messages are echoed into str(SLSError); cap them so a hostile or broken server cannot
# flood logs with a multi-megabyte body.
_MAX_MESSAGE_CHARS: Final = 512


class SLSError(ShipError):
    """The server answered a non-200 status.

    Attributes:
        status: HTTP status code.
        error_code: SLS ``errorCode`` (``"BadResponse"`` when the body was not the JSON envelope).
        message: SLS ``errorMessage`` (truncated to 512 characters).
        request_id: ``x-log-requestid`` response header, ``""`` when absent.
        project, logstore: the destination, when the raiser knows it (``""`` otherwise); shown
            in ``str()`` as a ``PutLogs {project}/{logstore}:`` prefix.
        retry_after: seconds from a ``Retry-After`` response header (SLS documents none; a
            proxy or gateway in front of it may send one), ``None`` without one.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        request_id: str = "",
        *,
        project: str = "",
        logstore: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.message = message[:_MAX_MESSAGE_CHARS]
        self.request_id = request_id
        self.project = project
        self.logstore = logstore
        self.retry_after = retry_after
        super().__init__(status, error_code, self.message, request_id)

    def __str__(self) -> str:
        rid = self.request_id or "-"
        where = f"PutLogs {self.project}/{self.logstore}: " if self.project or self.logstore else ""
        return f"{where}SLS {self.status} {self.error_code}: {self.message} (request id {rid})"

    def __repr__(self) -> str:
        return (
            f"SLSError(status={self.status!r}, error_code={self.error_code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r}, "
            f"project={self.project!r}, logstore={self.logstore!r})"
        )

    @property
    def outcome(self) -> Outcome:
        """What the flusher should do about this error (``classify_response``)."""
        return classify_response(self.status, self.error_code, self.message)


class ErrorCode(StrEnum):
    """SLS ``errorCode`` values: every code of sls-protocol.md §7 plus the emulator's choices.

    Member names equal the codes; a dot in a code becomes ``_`` in the member name.
    """

    # Server side, transient.
    InternalServerError = "InternalServerError"
    ServerBusy = "ServerBusy"
    RequestTimeout = "RequestTimeout"
    # Identity.
    Unauthorized = "Unauthorized"
    SignatureNotMatch = "SignatureNotMatch"
    InvalidAccessKeyId = "InvalidAccessKeyId"
    InvalidAccessKeyId_NotFound = "InvalidAccessKeyId.NotFound"
    SecurityToken_Expired = "SecurityToken.Expired"
    SecurityTokenExpired = "SecurityTokenExpired"
    MissAccessKeyId = "MissAccessKeyId"
    # Clock.
    RequestTimeExpired = "RequestTimeExpired"
    RequestTimeTooSkewed = "RequestTimeTooSkewed"
    # Quota.
    WriteQuotaExceed = "WriteQuotaExceed"
    ShardWriteQuotaExceed = "ShardWriteQuotaExceed"
    ExceedQuota = "ExceedQuota"
    # Destination.
    ProjectNotExist = "ProjectNotExist"
    LogStoreNotExist = "LogStoreNotExist"
    # The data itself.
    PostBodyTooLarge = "PostBodyTooLarge"
    InvalidLogSize = "InvalidLogSize"
    InvalidTimestamp = "InvalidTimestamp"
    InvalidTopic = "InvalidTopic"
    InvalidSource = "InvalidSource"
    PostBodyInvalid = "PostBodyInvalid"
    ParameterInvalid = "ParameterInvalid"
    InvalidParameter = "InvalidParameter"
    # Emulator choice: content key empty or too long (invalid UTF-8 is a decode error).
    InvalidKey = "InvalidKey"
    InvalidValue = "InvalidValue"  # emulator choice: content value over the size limit
    InvalidBodyRawSize = "InvalidBodyRawSize"
    # Request shape (only a broken client or proxy produces these).
    InvalidCompressType = "InvalidCompressType"
    MissingBodyRawSize = "MissingBodyRawSize"
    MissingContentType = "MissingContentType"
    InvalidContentType = "InvalidContentType"
    MissingDate = "MissingDate"
    InvalidDateFormat = "InvalidDateFormat"
    InvalidRequestTime = "InvalidRequestTime"
    MissingHost = "MissingHost"
    InvalidHost = "InvalidHost"
    MissingAPIVersion = "MissingAPIVersion"
    InvalidAPIVersion = "InvalidAPIVersion"
    MissingSignatureMethod = "MissingSignatureMethod"
    InvalidSignatureMethod = "InvalidSignatureMethod"
    MissingContentLength = "MissingContentLength"
    InvalidContentMD5 = "InvalidContentMD5"  # emulator choice: Content-MD5 != md5(body)
    # Client-side code (PY/GO/JP) for a response that is not the JSON error envelope.
    BadResponse = "BadResponse"


_E = ErrorCode

DEFAULT_STATUS: Final[Mapping[ErrorCode, int]] = MappingProxyType(
    {
        _E.InternalServerError: 500,
        _E.ServerBusy: 503,
        _E.RequestTimeout: 500,
        _E.Unauthorized: 401,
        _E.SignatureNotMatch: 401,
        _E.InvalidAccessKeyId: 401,
        _E.InvalidAccessKeyId_NotFound: 401,
        _E.SecurityToken_Expired: 401,
        _E.SecurityTokenExpired: 401,
        _E.MissAccessKeyId: 400,
        _E.RequestTimeExpired: 400,
        _E.RequestTimeTooSkewed: 400,
        _E.WriteQuotaExceed: 403,
        _E.ShardWriteQuotaExceed: 403,
        _E.ExceedQuota: 403,
        _E.ProjectNotExist: 404,
        _E.LogStoreNotExist: 404,
        _E.PostBodyTooLarge: 413,
        _E.InvalidLogSize: 400,
        _E.InvalidTimestamp: 400,
        _E.InvalidTopic: 400,
        _E.InvalidSource: 400,
        _E.PostBodyInvalid: 400,
        _E.ParameterInvalid: 400,
        _E.InvalidParameter: 400,
        _E.InvalidKey: 400,
        _E.InvalidValue: 400,
        _E.InvalidBodyRawSize: 400,
        _E.InvalidCompressType: 400,
        _E.MissingBodyRawSize: 400,
        _E.MissingContentType: 400,
        _E.InvalidContentType: 400,
        _E.MissingDate: 400,
        _E.InvalidDateFormat: 400,
        _E.InvalidRequestTime: 400,
        _E.MissingHost: 400,
        _E.InvalidHost: 400,
        _E.MissingAPIVersion: 400,
        _E.InvalidAPIVersion: 400,
        _E.MissingSignatureMethod: 400,
        _E.InvalidSignatureMethod: 400,
        _E.MissingContentLength: 411,
        _E.InvalidContentMD5: 400,
        _E.BadResponse: 500,
    }
)


class Outcome(Enum):
    """What the flusher does with a batch after one attempt."""

    DELIVERED = "delivered"
    RETRY = "retry"
    THROTTLED = "throttled"
    CREDENTIALS = "credentials"
    REJECTED = "rejected"


_O = Outcome

# Classification of known codes. Codes absent here (BadResponse, unknown strings) fall through
# to the status families in classify_response.
_CODE_OUTCOME: Final[Mapping[str, Outcome]] = MappingProxyType(
    {
        _E.InternalServerError: _O.RETRY,
        _E.ServerBusy: _O.RETRY,
        _E.RequestTimeout: _O.RETRY,
        _E.RequestTimeExpired: _O.RETRY,
        _E.RequestTimeTooSkewed: _O.RETRY,
        _E.InvalidContentMD5: _O.RETRY,
        _E.WriteQuotaExceed: _O.THROTTLED,
        _E.ShardWriteQuotaExceed: _O.THROTTLED,
        _E.ExceedQuota: _O.THROTTLED,
        _E.Unauthorized: _O.CREDENTIALS,
        _E.SignatureNotMatch: _O.CREDENTIALS,
        _E.InvalidAccessKeyId: _O.CREDENTIALS,
        _E.InvalidAccessKeyId_NotFound: _O.CREDENTIALS,
        _E.SecurityToken_Expired: _O.CREDENTIALS,
        _E.SecurityTokenExpired: _O.CREDENTIALS,
        _E.MissAccessKeyId: _O.CREDENTIALS,
        _E.ProjectNotExist: _O.CREDENTIALS,
        _E.LogStoreNotExist: _O.CREDENTIALS,
        _E.InvalidCompressType: _O.CREDENTIALS,
        _E.MissingBodyRawSize: _O.CREDENTIALS,
        _E.MissingContentType: _O.CREDENTIALS,
        _E.InvalidContentType: _O.CREDENTIALS,
        _E.MissingDate: _O.CREDENTIALS,
        _E.InvalidDateFormat: _O.CREDENTIALS,
        _E.InvalidRequestTime: _O.CREDENTIALS,
        _E.MissingHost: _O.CREDENTIALS,
        _E.InvalidHost: _O.CREDENTIALS,
        _E.MissingAPIVersion: _O.CREDENTIALS,
        _E.InvalidAPIVersion: _O.CREDENTIALS,
        _E.MissingSignatureMethod: _O.CREDENTIALS,
        _E.InvalidSignatureMethod: _O.CREDENTIALS,
        _E.MissingContentLength: _O.CREDENTIALS,
        _E.PostBodyTooLarge: _O.REJECTED,
        _E.InvalidLogSize: _O.REJECTED,
        _E.InvalidTimestamp: _O.REJECTED,
        _E.InvalidTopic: _O.REJECTED,
        _E.InvalidSource: _O.REJECTED,
        _E.PostBodyInvalid: _O.REJECTED,
        _E.ParameterInvalid: _O.REJECTED,
        _E.InvalidParameter: _O.REJECTED,
        _E.InvalidKey: _O.REJECTED,
        _E.InvalidValue: _O.REJECTED,
        # The real service uses it for a raw size outside 0..limit: a property of this batch
        # that bisection fixes, unlike the Missing*/Invalid* header codes above.
        _E.InvalidBodyRawSize: _O.REJECTED,
    }
)

# Project-level hard limits answer 403 with these messages (sls-protocol.md §6) and a code we have
# not seen; match the message so they are throttled, not treated as a credentials failure.
_QUOTA_MESSAGE = re.compile(r"quota|qps", re.IGNORECASE)

# 4xx statuses that say "you are talking to the wrong thing / as the wrong identity".
_CREDENTIALS_STATUSES: Final = frozenset({401, 403, 404, 405, 407})


def classify_response(status: int, error_code: str | None, message: str | None = None) -> Outcome:
    """Classify one HTTP response. The single source of truth for retry decisions.

    Args:
        status: HTTP status code.
        error_code: SLS ``errorCode`` (``None``/``""``/``"BadResponse"`` when unknown).
        message: SLS ``errorMessage``; only used to recognise 403 quota messages.

    Order: 200 wins; then any 5xx is RETRY (a sick server's codes are not trusted) and any 429
    is THROTTLED; then a known code decides; then the status family.
    """
    if status == 200:
        return Outcome.DELIVERED
    if status >= 500:
        return Outcome.RETRY
    if status == 429:
        return Outcome.THROTTLED
    if error_code:
        known = _CODE_OUTCOME.get(error_code)
        if known is not None:
            return known
    if status == 403 and message and _QUOTA_MESSAGE.search(message):
        return Outcome.THROTTLED
    if status == 408 or 200 <= status < 300 or status < 200:
        # 408: the server timed out reading us. Non-200 2xx / 1xx: not a success for SLS, and
        # retrying is the at-least-once choice (RP retries them too).
        return Outcome.RETRY
    if 300 <= status < 400 or status in _CREDENTIALS_STATUSES:
        # A redirect means the endpoint is wrong (e.g. http -> https); fix the config.
        return Outcome.CREDENTIALS
    return Outcome.REJECTED


def classify_exception(exc: BaseException) -> Outcome:
    """Classify an exception raised while building or sending one request.

    ``SLSError`` -> ``classify_response``; ``TransportError`` and builtin ``OSError``/
    ``TimeoutError`` -> RETRY; ``ConfigError``/``CredentialsError`` -> CREDENTIALS;
    ``ProtocolError`` (the batch cannot be encoded) -> REJECTED. Anything else is RETRY: an
    unexpected bug must keep the data, never dead-letter it.
    """
    if isinstance(exc, SLSError):
        return exc.outcome
    if isinstance(exc, TransportError):
        return Outcome.RETRY
    if isinstance(exc, ConfigError | CredentialsError):
        return Outcome.CREDENTIALS
    if isinstance(exc, ProtocolError):
        return Outcome.REJECTED
    return Outcome.RETRY


def _header(headers: Mapping[str, str], name: str) -> str:
    """Case-insensitive header lookup that works for plain dicts and httpx.Headers alike."""
    value = headers.get(name)
    if value is not None:
        return value
    for key, val in headers.items():
        if key.lower() == name:
            return val
    return ""


def parse_error_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    project: str = "",
    logstore: str = "",
) -> SLSError | None:
    """Build the ``SLSError`` for a response, or ``None`` iff ``status == 200``.

    The SLS error envelope is JSON ``{"errorCode": ..., "errorMessage": ...}``. A body that is not
    that envelope (HTML from a proxy, empty 5xx, truncated JSON) yields code ``"BadResponse"`` and
    a short excerpt of the body as the message, so classification falls back to the status.
    """
    if status == 200:
        return None
    request_id = _header(headers, "x-log-requestid")
    code: str = ErrorCode.BadResponse
    message = ""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errorCode"), str) and doc["errorCode"]:
        code = doc["errorCode"]
        raw_message = doc.get("errorMessage")
        message = raw_message if isinstance(raw_message, str) else ""
    else:
        excerpt = body[:200].decode("utf-8", "replace").strip()
        message = f"unexpected response body: {excerpt!r}" if excerpt else "empty response body"
    return SLSError(
        status,
        code,
        message,
        request_id,
        project=project,
        logstore=logstore,
        retry_after=parse_retry_after(_header(headers, "retry-after")),
    )


def parse_retry_after(value: str, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date); None if
    absent or unreadable. Negative values and dates in the past read as 0."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    # Imported here: an HTTP-date Retry-After is rare, and email.utils costs a process that
    # only logs ~7 ms at import (the delta-seconds form above is what SLS sends).
    import email.utils  # noqa: PLC0415

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
