"""Emulator configuration: one frozen, validated value.

Owns: every knob of the local SLS emulator, including the error-code choices for the
situations that sls-protocol.md marks as "not determined". A choice that the protocol
document leaves open is a field here with a documented default, never a constant buried in
the request pipeline, so a conformance test can flip it (e.g. ``RequestTimeExpired`` vs the
older ``RequestTimeTooSkewed``).

Invariants:
- ``EmulatorConfig`` is immutable and validated in ``__post_init__``; an invalid value raises
  ``ValueError`` naming the field. Mappings are copied into read-only views so a caller
  mutating its dict later cannot change a running emulator.
- ``repr()`` never shows access key secrets or STS tokens (only key ids and counts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from yai_spool.sls.model import RESERVED_KEYS

__all__ = ["DEFAULT_RESERVED_KEYS", "EmulatorConfig"]

#: Content keys the service reserves (sls-protocol.md §6, DOC reserved fields).
DEFAULT_RESERVED_KEYS: frozenset[str] = RESERVED_KEYS

#: DOC data model: letters, digits and underscore, not starting with a digit.
DEFAULT_KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"

_MiB = 1024 * 1024


def _readonly(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything the emulator can be told.

    Network:
        host: address to bind; the emulator is a test bed, so only loopback makes sense.
        port: TCP port; 0 picks a free one (read it back from ``Emulator.port``).
        keepalive_timeout: seconds an idle keep-alive connection is kept; ``None`` keeps it
            until stop. The default is ``None`` because the official Python SDK does not
            retry a request whose reused connection was closed under it (``RemoteDisconnected``,
            sls-protocol.md §8), so closing idle connections would make its tests flaky.
        max_header_bytes: request line + headers larger than this get 431 and a close.

    Authentication (sls-protocol.md §3):
        access_keys: access key id -> secret. Ignored when ``verify_signatures`` is false.
        sts_tokens: STS token -> the access key id it belongs to. A key id that appears as a
            value here is a *temporary* key and must present a matching
            ``x-acs-security-token``; any other key id may still send a token, which must then
            be registered for that id.
        verify_signatures: check V1/V4 signatures, key ids, tokens and request time.
        max_skew_seconds: allowed |request Date - server time|.
        skew_error_code: ``RequestTimeExpired`` (current DOC) or ``RequestTimeTooSkewed``
            (older DOC, Java/Rust producers).
        missing_auth_code: answer when verification is on and ``Authorization`` is absent.
            ``MissAccessKeyId`` (400, the DOC common-error table) by default; the Python SDK
            sends no Authorization when its secret is empty, and this is what the service
            answers that case with. ``Unauthorized`` is the alternative.
        unknown_key_code: answer for an unregistered access key id (``Unauthorized``, 401,
            per DOC "bad or unknown AccessKeyId").
        check_content_md5: reject a body whose ``Content-MD5`` header does not match, even
            when signatures are not verified.
        v1_meta_headers: how a V1 signature may cover ``x-log-meta-*`` headers. The Python
            SDK never signs them (``unsigned``); the Node.js clients (``@alicloud/gateway-sls``,
            ``@alicloud/log``, ``aliyun-sdk``) sign every ``x-log-*`` header (``signed``).
            ``either`` (default) accepts both forms, so every official client passes; a request
            without such headers has one form and costs one HMAC. The hash itself always comes
            from the request's ``x-log-signaturemethod`` (``hmac-sha1`` when absent, or
            ``hmac-sha256``); any other value is answered ``InvalidSignatureMethod`` (400).

    Request shape:
        missing_content_type: a non-empty body without ``Content-Type``. ``reject``
            (default): ``MissingContentType`` (400), as the DOC common-error table says
            ("Content-Type does not exist in http header when body is not empty"). ``accept``:
            treat it as protobuf. Every PutLogs client that works sends
            ``application/x-protobuf``; the Node.js OpenAPI gateway (``@alicloud/gateway-sls``
            0.3.2) sends none for a binary body unless the caller sets one.
        gzip_compress_type: ``x-log-compresstype: gzip``. The OpenAPI gateways offer it and
            put zlib (RFC 1950) bytes under that name, exactly what they send as ``deflate``
            (Node ``zlib.deflate``, Python ``zlib.compress``; and they decode a ``gzip``
            response body with the zlib decoder too). The DOC lists only lz4 and deflate, and
            whether SLS takes ``gzip`` for PutLogs is not determined. ``zlib`` (default)
            decodes it as zlib, so the gateway's offer works against the emulator; ``reject``
            answers ``InvalidCompressType`` (400), the strict reading of the DOC.

    Body and limits (sls-protocol.md §5, §6):
        max_body_bytes: largest ``x-log-bodyrawsize`` (raw, uncompressed) -> PostBodyTooLarge.
            Also bounds the wire body (compressed data can be slightly larger than raw), so
            a hostile Content-Length cannot make the emulator allocate unbounded memory.
        max_logs_per_request: more logs than this in one LogGroup -> ``too_many_logs_code``.
            The service's own figure was not found; 40,960 is the producers' hard batch cap.
        max_value_bytes: largest content value -> ``value_too_large_code``.
        max_key_bytes: longest content key (bytes) -> ``invalid_key_code``; empty keys too.
        key_pattern: full-match regex for content keys, ``None`` to accept any key.
        reserved_keys / reserved_key_prefixes: content keys the service reserves
            -> ``reserved_key_code``.
        max_topic_bytes / max_source_bytes: -> InvalidTopic / InvalidSource.
        max_log_time_skew_seconds: if set, a log whose ``__time__`` differs from server time
            by more than this -> InvalidTimestamp. ``None`` (default): the service's window is
            not determined, so any uint32 time is accepted.
        too_many_logs_code: ``InvalidLogSize`` (the code the SDKs use locally for it).
        value_too_large_code: ``InvalidValue`` (errors.py's choice for an oversized value).
        invalid_key_code: ``InvalidKey`` (errors.py's choice) for keys that are empty, too
            long or off-pattern.
        reserved_key_code: ``ParameterInvalid`` (a documented 400 common code) for reserved
            keys such as ``__time__`` or ``__tag__:x``.
        poison_code: the answer a poison fault gives (``InvalidParameter``, 400).

    Routing:
        projects: if set, project -> allowed logstores (empty collection = any logstore);
            an unknown project -> ProjectNotExist, an unknown logstore -> LogStoreNotExist.
            ``None`` (default) accepts every project and logstore.
        status_overrides: error code -> HTTP status, applied over ``errors.DEFAULT_STATUS``.

    Storage:
        db_path: SQLite file that receives accepted batches and request summaries;
            ``None`` keeps them in memory (gone when the emulator is closed).
        store_requests: keep one summary row per request (``Emulator.requests()``).
    """

    host: str = "127.0.0.1"
    port: int = 0
    keepalive_timeout: float | None = None
    max_header_bytes: int = 64 * 1024

    access_keys: Mapping[str, str] = field(default_factory=dict)
    sts_tokens: Mapping[str, str] = field(default_factory=dict)
    verify_signatures: bool = True
    max_skew_seconds: float = 900.0
    skew_error_code: str = "RequestTimeExpired"
    missing_auth_code: str = "MissAccessKeyId"
    unknown_key_code: str = "Unauthorized"
    check_content_md5: bool = True
    v1_meta_headers: Literal["either", "unsigned", "signed"] = "either"

    missing_content_type: Literal["reject", "accept"] = "reject"
    gzip_compress_type: Literal["zlib", "reject"] = "zlib"

    max_body_bytes: int = 10 * _MiB
    max_logs_per_request: int = 40_960
    max_value_bytes: int = _MiB
    max_key_bytes: int = 128
    key_pattern: str | None = DEFAULT_KEY_PATTERN
    reserved_keys: frozenset[str] = DEFAULT_RESERVED_KEYS
    reserved_key_prefixes: tuple[str, ...] = ("__tag__:",)
    max_topic_bytes: int = 128
    max_source_bytes: int = 128
    max_log_time_skew_seconds: float | None = None
    too_many_logs_code: str = "InvalidLogSize"
    value_too_large_code: str = "InvalidValue"
    invalid_key_code: str = "InvalidKey"
    reserved_key_code: str = "ParameterInvalid"
    poison_code: str = "InvalidParameter"

    projects: Mapping[str, frozenset[str]] | None = None
    status_overrides: Mapping[str, int] = field(default_factory=dict)

    db_path: str | None = None
    store_requests: bool = True

    def __post_init__(self) -> None:
        # Freeze the mappings: a frozen dataclass holding a caller's mutable dict is not frozen.
        object.__setattr__(self, "access_keys", _readonly(self.access_keys))
        object.__setattr__(self, "sts_tokens", _readonly(self.sts_tokens))
        object.__setattr__(self, "status_overrides", MappingProxyType(dict(self.status_overrides)))
        object.__setattr__(self, "reserved_keys", frozenset(self.reserved_keys))
        object.__setattr__(self, "reserved_key_prefixes", tuple(self.reserved_key_prefixes))
        if self.projects is not None:
            object.__setattr__(
                self,
                "projects",
                MappingProxyType({p: frozenset(ls) for p, ls in self.projects.items()}),
            )
        self._validate()

    def _validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"EmulatorConfig.port must be 0..65535, got {self.port!r}")
        if self.keepalive_timeout is not None and not self.keepalive_timeout > 0:
            raise ValueError("EmulatorConfig.keepalive_timeout must be > 0 or None")
        for name in (
            "max_header_bytes",
            "max_body_bytes",
            "max_logs_per_request",
            "max_value_bytes",
            "max_key_bytes",
            "max_topic_bytes",
            "max_source_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"EmulatorConfig.{name} must be an int >= 1, got {value!r}")
        if not self.max_skew_seconds > 0:
            raise ValueError("EmulatorConfig.max_skew_seconds must be > 0")
        if self.max_log_time_skew_seconds is not None and not self.max_log_time_skew_seconds > 0:
            raise ValueError("EmulatorConfig.max_log_time_skew_seconds must be > 0 or None")
        for name, allowed in (
            ("v1_meta_headers", ("either", "unsigned", "signed")),
            ("missing_content_type", ("reject", "accept")),
            ("gzip_compress_type", ("zlib", "reject")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"EmulatorConfig.{name} must be one of {', '.join(allowed)}, "
                    f"got {getattr(self, name)!r}"
                )
        if self.skew_error_code not in ("RequestTimeExpired", "RequestTimeTooSkewed"):
            raise ValueError(
                "EmulatorConfig.skew_error_code must be RequestTimeExpired or "
                f"RequestTimeTooSkewed, got {self.skew_error_code!r}"
            )
        for name in (
            "missing_auth_code",
            "unknown_key_code",
            "too_many_logs_code",
            "value_too_large_code",
            "invalid_key_code",
            "reserved_key_code",
            "poison_code",
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"EmulatorConfig.{name} must be a non-empty error code")
        if self.key_pattern is not None:
            try:
                re.compile(self.key_pattern)
            except re.error as exc:
                raise ValueError(f"EmulatorConfig.key_pattern is not a regex: {exc}") from None
        for key_id, secret in self.access_keys.items():
            if not key_id or not isinstance(secret, str):
                raise ValueError("EmulatorConfig.access_keys must map non-empty ids to secrets")
        for token, key_id in self.sts_tokens.items():
            if not token or not key_id:
                raise ValueError("EmulatorConfig.sts_tokens must map non-empty tokens to key ids")
        for code, status in self.status_overrides.items():
            if not 100 <= status <= 599:
                raise ValueError(f"EmulatorConfig.status_overrides[{code!r}] is not a status")

    def __repr__(self) -> str:
        # Hand-written so secrets and tokens can never leak through logs or test output.
        return (
            f"EmulatorConfig(host={self.host!r}, port={self.port!r}, "
            f"access_key_ids={sorted(self.access_keys)!r}, sts_tokens={len(self.sts_tokens)}, "
            f"verify_signatures={self.verify_signatures!r}, db_path={self.db_path!r})"
        )

    __str__ = __repr__
