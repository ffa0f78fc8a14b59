"""The sans-I/O core of one PutLogs exchange: everything a client does except moving bytes.

Owns: :class:`ClientTimeouts` (per-phase limits and the total deadline), :class:`PutLogsResult`,
the client keyword set :class:`PutLogsOptions` and its validation into an :class:`Exchange`,
request preparation (fresh credentials and a fresh signature per call), the classification of
an answer (status, headers, body) into a result or an :class:`~yai_spool.sls.errors.SLSError`,
and the call deadline every socket operation reads (:func:`call_budget`).

The native twins (:mod:`yai_spool.sls.client`) and the SDK adapter
(:mod:`yai_spool.sls.sdk_client`) build one :class:`Exchange` each and only add I/O, so the
rules below hold for all of them by construction.

Invariants:

- **No I/O and no httpx here.** This module imports only the pure protocol core; importing it
  (for :class:`ClientTimeouts`, say) never loads an HTTP library.
- **Success is status 200 exactly**; any other status raises the error
  :func:`~yai_spool.sls.errors.parse_error_response` builds.
- **Every call signs afresh**: credentials are asked of the provider and the date is taken on
  every :meth:`Exchange.prepare`, so an STS refresh or a long outage never sends a stale
  signature (SLS rejects dates more than 15 minutes off).
- **Bounded time**: :meth:`Exchange.deadline` arms the call's monotonic deadline in a
  ContextVar; :func:`call_budget` gives each socket operation ``min(phase timeout, time left)``.
  The I/O of one call runs in its own thread (sync) or task (async), so concurrent calls never
  read each other's deadline.
- **No secrets in text**: :meth:`Exchange.describe` names the credentials provider's type only
  and masks a proxy password.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Self, TypedDict
from urllib.parse import urlsplit, urlunsplit

from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import CredentialsProvider, resolve_credentials
from yai_spool.sls.errors import ConfigError, parse_error_response
from yai_spool.sls.request import (
    Destination,
    Endpoint,
    PreparedRequest,
    RequestOptions,
    SignatureVersion,
    build_put_logs_request,
    build_put_logs_request_from_raw,
    region_from_host,
)
from yai_spool.sls.signing import (
    DEFAULT_SIGNATURE_METHOD,
    SignatureMethod,
    validate_signature_method,
)

if TYPE_CHECKING:
    import types

    from yai_spool.sls.model import LogGroup

__all__ = [
    "ClientTimeouts",
    "ClosingContext",
    "Exchange",
    "PhaseTimeouts",
    "PutLogsOptions",
    "PutLogsResult",
    "SignatureVersion",
    "call_budget",
    "mask_url_password",
    "where",
]


@dataclass(frozen=True, slots=True)
class ClientTimeouts:
    """Time limits of one PutLogs call, in seconds.

    Attributes:
        connect: TCP (+TLS) connect of a new connection.
        read: longest wait for any one read from the server.
        write: longest wait for any one write to the server.
        pool: longest wait for a free connection when ``max_connections`` are busy.
        total: hard deadline of the whole call (pool wait + connect + send + response).
            Every socket operation gets ``min(its phase timeout, time left)``; when the
            budget is spent the call raises :class:`~yai_spool.sls.errors.RequestTimeout`.
            Encoding and signing happen before the clock starts (they are CPU work).
    """

    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 5.0
    total: float = 60.0

    def __post_init__(self) -> None:
        for name in ("connect", "read", "write", "pool", "total"):
            value = getattr(self, name)
            # bool is an int: reject it explicitly so a typo like read=True is loud.
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigError(
                    f"ClientTimeouts.{name} must be a finite number > 0, got {value!r}"
                )

    def capped(self, left: float) -> PhaseTimeouts:
        """The per-phase timeouts, none longer than the budget ``left``."""
        return PhaseTimeouts(
            connect=min(self.connect, left),
            read=min(self.read, left),
            write=min(self.write, left),
            pool=min(self.pool, left),
        )


@dataclass(frozen=True, slots=True)
class PhaseTimeouts:
    """Per-phase timeouts handed to the HTTP library (each already capped by the total)."""

    connect: float
    read: float
    write: float
    pool: float


@dataclass(frozen=True, slots=True)
class PutLogsResult:
    """A delivered PutLogs call: the server's ``x-log-requestid`` and the status (200)."""

    request_id: str
    status: int


class PutLogsOptions(TypedDict, total=False):
    """The keywords every PutLogs client takes (native twins and SDK adapter alike).

    Defaults (applied by :meth:`Exchange.configure`): credentials from the environment,
    ``compression="lz4"``, ``signature_version="v1"``, ``signature_method="hmac-sha1"``, region
    derived from a regional endpoint, ``ClientTimeouts()``, the default User-Agent, no proxy.
    """

    access_key_id: str | None
    access_key_secret: str | None
    security_token: str | None
    credentials_provider: CredentialsProvider | None
    compression: Compression | str
    signature_version: SignatureVersion
    signature_method: SignatureMethod
    region: str | None
    timeouts: ClientTimeouts | None
    user_agent: str | None
    proxy: str | None


# ------------------------------------------------------------------------- call deadline

_DEADLINE: ContextVar[float | None] = ContextVar("yai_spool_client_deadline", default=None)


def call_budget(timeout: float | None, expired: type[Exception]) -> float | None:
    """The timeout to give one socket operation: the phase timeout capped by time left.

    Raises ``expired`` (the I/O library's timeout type) when the call's deadline has passed;
    outside a call (no deadline armed) the phase timeout passes through unchanged.
    """
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("total deadline of the call exceeded")
    return left if timeout is None else min(timeout, left)


# ------------------------------------------------------------------------------ exchange


@dataclass(frozen=True, slots=True)
class Exchange:
    """The validated configuration of a PutLogs client and the pure steps of one call."""

    endpoint: Endpoint
    credentials: CredentialsProvider
    compression: Compression
    signature_version: SignatureVersion
    signature_method: SignatureMethod
    region: str | None
    timeouts: ClientTimeouts
    user_agent: str | None
    proxy: str | None

    @classmethod
    def configure(cls, endpoint: str, options: PutLogsOptions) -> Exchange:
        """Validate a client's arguments; every mistake is a ``ConfigError`` at construction.

        Credentials are resolved last, so a bad argument is reported before missing ones.
        """
        try:
            parsed = Endpoint.parse(endpoint)
            compression = Compression(options.get("compression", Compression.LZ4))
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        version = options.get("signature_version", "v1")
        if version not in ("v1", "v4"):
            raise ConfigError(f"signature_version must be 'v1' or 'v4', got {version!r}")
        method = validate_signature_method(
            options.get("signature_method", DEFAULT_SIGNATURE_METHOD)
        )
        region = options.get("region")
        if version == "v4":
            # Fail at construction, not on the first call: the region is given or derivable
            # from a regional endpoint such as cn-hangzhou.log.aliyuncs.com.
            region = region or region_from_host(parsed.host)
            if not region:
                raise ConfigError("signature_version='v4' needs region= (e.g. 'cn-hangzhou')")
        timeouts = options.get("timeouts")
        return cls(
            endpoint=parsed,
            credentials=resolve_credentials(
                access_key_id=options.get("access_key_id"),
                access_key_secret=options.get("access_key_secret"),
                security_token=options.get("security_token"),
                provider=options.get("credentials_provider"),
            ),
            compression=compression,
            signature_version=version,
            signature_method=method,
            region=region,
            timeouts=timeouts if timeouts is not None else ClientTimeouts(),
            user_agent=options.get("user_agent"),
            proxy=options.get("proxy"),
        )

    def prepare(
        self, project: str, logstore: str, payload: LogGroup | bytes, hash_key: str | None
    ) -> PreparedRequest:
        """Encode, compress and sign one call (fresh credentials, fresh date)."""
        destination = Destination(self.endpoint, project, logstore)
        credentials = self.credentials.get_credentials()
        options: RequestOptions = {
            "compression": self.compression,
            "signature_version": self.signature_version,
            "signature_method": self.signature_method,
            "region": self.region,
            "hash_key": hash_key,
            "user_agent": self.user_agent,
        }
        if isinstance(payload, bytes | bytearray | memoryview):
            return build_put_logs_request_from_raw(
                destination, bytes(payload), credentials, **options
            )
        return build_put_logs_request(destination, payload, credentials, **options)

    @contextmanager
    def deadline(self) -> Iterator[None]:
        """Arm the total deadline for the I/O of one call (read by :func:`call_budget`)."""
        token = _DEADLINE.set(time.monotonic() + self.timeouts.total)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    @staticmethod
    def result(
        status: int, headers: Mapping[str, str], body: bytes, project: str, logstore: str
    ) -> PutLogsResult:
        """The answer of one call: a result for status 200, else its ``SLSError`` raised."""
        error = parse_error_response(status, headers, body, project=project, logstore=logstore)
        if error is not None:
            raise error
        return PutLogsResult(request_id=headers.get("x-log-requestid", ""), status=status)

    def describe(self) -> str:
        """The ``repr`` fields of a client. Deliberately no credentials at all: not the secret,
        not the token, and not the provider's own repr (third-party providers may not mask)."""
        return (
            f"credentials={type(self.credentials).__name__}, "
            f"compression={self.compression.value!r}, "
            f"signature_version={self.signature_version!r}, "
            f"signature_method={self.signature_method!r}, region={self.region!r}, "
            f"timeouts={self.timeouts!r}, proxy={mask_url_password(self.proxy)!r}"
        )


class ClosingContext:
    """``with client:`` closes the client on the way out (the blocking clients' protocol)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


def mask_url_password(url: str | None) -> str | None:
    """``http://user:pw@host:3128`` -> ``http://user:***@host:3128`` for reprs and messages."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def where(project: str, logstore: str) -> str:
    """The ``PutLogs {project}/{logstore}`` prefix of every transport error message."""
    return f"PutLogs {project}/{logstore}"
