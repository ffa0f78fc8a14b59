"""The two tables of the one TOML file that the daemon and the handlers both read.

Owns ``[defaults]`` (where records go: :class:`DestinationConfig`, layered under each spool's
own entry) and ``[shipping]`` (how records are batched, compressed and signed:
:class:`ShippingConfig`), their parsers :func:`parse_destination` and :func:`parse_shipping`,
and :data:`ENV_CONFIG`, the variable naming the file. ``yai-spool run``
(:mod:`yai_spool.daemon.config`) and ``yai_spool.from_toml`` (:mod:`yai_spool.handlers.configure`)
both call these, so one file describes an application and its daemon and both word every
problem alike.

Invariants: the values are frozen and validated (``__post_init__`` guards programmatic
construction; the parsers report friendlier messages first, all of a file at once, through
:class:`~yai_spool.settings.fields.Errors`); no credentials live here; nothing here reads a
file or the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from yai_spool.settings.fields import Errors, check_keys, choice, integer, number, string, type_name
from yai_spool.sls.compression import Compression
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.request import Endpoint, validate_logstore, validate_project
from yai_spool.sls.signing import (
    DEFAULT_SIGNATURE_METHOD,
    SIGNATURE_METHODS,
    SignatureMethod,
    validate_signature_method,
)

__all__ = [
    "DEST_KEYS",
    "ENV_CONFIG",
    "DestinationConfig",
    "ShippingConfig",
    "parse_destination",
    "parse_shipping",
]

#: The variable naming the TOML file when no path is given (daemon and ``from_toml``).
ENV_CONFIG = "YAI_SPOOL_CONFIG"

_MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DestinationConfig:
    """Where a spool's records go. ``None`` = inherit (and, for names, keep the row's)."""

    endpoint: str | None = None
    project: str | None = None
    logstore: str | None = None
    topic: str | None = None

    def over(self, base: DestinationConfig) -> DestinationConfig:
        """This layer on top of ``base``: every value set here wins."""
        return DestinationConfig(
            endpoint=self.endpoint if self.endpoint is not None else base.endpoint,
            project=self.project if self.project is not None else base.project,
            logstore=self.logstore if self.logstore is not None else base.logstore,
            topic=self.topic if self.topic is not None else base.topic,
        )


@dataclass(frozen=True, slots=True)
class ShippingConfig:
    """How every flusher of the daemon batches, compresses, signs and retries."""

    compression: Compression = Compression.LZ4
    signature_version: Literal["v1", "v4"] = "v1"
    region: str | None = None
    batch_size: int = 4096
    batch_bytes: int = 4 * _MiB
    linger: float = 0.5
    max_age: float | None = 6 * 3600.0
    #: V1's HMAC (``x-log-signaturemethod``); V4 ignores it.
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD

    def __post_init__(self) -> None:
        object.__setattr__(self, "compression", Compression(self.compression))
        if self.signature_version not in ("v1", "v4"):
            raise ConfigError("shipping.signature_version: must be 'v1' or 'v4'")
        validate_signature_method(self.signature_method, field="shipping.signature_method")
        if not 1 <= self.batch_size <= 40_960:
            raise ConfigError("shipping.batch_size: must be in 1..40960")
        if not 1024 <= self.batch_bytes <= 8 * _MiB:
            raise ConfigError("shipping.batch_bytes: must be in 1024..8388608")
        if self.linger < 0:
            raise ConfigError("shipping.linger: must be >= 0")
        if self.max_age is not None and self.max_age <= 0:
            raise ConfigError("shipping.max_age: must be > 0 (or 0 in TOML for no limit)")


DEST_KEYS = ("endpoint", "project", "logstore", "topic")


def _checked(
    table: Mapping[str, Any],
    key: str,
    prefix: str,
    errors: Errors,
    *,
    example: str,
    check: Callable[[str], object],
    fix: str,
) -> str | None:
    """The string at ``key`` if ``check`` accepts it (its ConfigError is the problem)."""
    value = string(table, key, f"{prefix}{key}", errors, example=example)
    if value is None:
        return None
    try:
        check(value)
    except ConfigError as exc:
        errors.add(f"{prefix}{key}", str(exc), fix)
        return None
    return value


def parse_destination(table: Mapping[str, Any], prefix: str, errors: Errors) -> DestinationConfig:
    endpoint = _checked(
        table,
        "endpoint",
        prefix,
        errors,
        example='endpoint = "cn-hangzhou.log.aliyuncs.com"',
        check=Endpoint.parse,
        fix='use a host name or URL, e.g. endpoint = "https://cn-hangzhou.log.aliyuncs.com"',
    )
    names = {
        key: _checked(
            table, key, prefix, errors, example=example, check=check, fix=f"e.g. {example}"
        )
        for key, example, check in (
            ("project", 'project = "my-project"', validate_project),
            ("logstore", 'logstore = "app-logs"', validate_logstore),
        )
    }
    topic = None
    if "topic" in table:
        # An empty topic is meaningful (SLS's default), so it is allowed here.
        value = table["topic"]
        if isinstance(value, str):
            topic = value
        else:
            errors.add(
                f"{prefix}topic", f"must be a string, got {type_name(value)}", 'e.g. topic = "web"'
            )
    return DestinationConfig(endpoint, names["project"], names["logstore"], topic)


def parse_shipping(table: Mapping[str, Any], errors: Errors) -> ShippingConfig:
    p = "shipping."
    check_keys(
        table,
        (
            "compression",
            "signature_version",
            "signature_method",
            "region",
            "batch_size",
            "batch_bytes",
            "linger",
            "max_age",
        ),
        p,
        errors,
    )
    compression = choice(
        table,
        "compression",
        p + "compression",
        errors,
        choices=[c.value for c in Compression],
        default="lz4",
    )
    signature = choice(
        table,
        "signature_version",
        p + "signature_version",
        errors,
        choices=["v1", "v4"],
        default="v1",
    )
    signature_method = choice(
        table,
        "signature_method",
        p + "signature_method",
        errors,
        choices=list(SIGNATURE_METHODS),
        default=DEFAULT_SIGNATURE_METHOD,
    )
    region = string(table, "region", p + "region", errors, example='region = "cn-hangzhou"')
    batch_size = integer(
        table,
        "batch_size",
        p + "batch_size",
        errors,
        4096,
        low=1,
        high=40_960,
        example="batch_size = 4096",
    )
    batch_bytes = integer(
        table,
        "batch_bytes",
        p + "batch_bytes",
        errors,
        4 * _MiB,
        low=1024,
        high=8 * _MiB,
        example="batch_bytes = 4194304",
    )
    linger = number(
        table, "linger", p + "linger", errors, 0.5, example="linger = 0.5", exclusive=False
    )
    max_age = number(
        table,
        "max_age",
        p + "max_age",
        errors,
        6 * 3600.0,
        example="max_age = 21600",
        exclusive=False,
    )
    return ShippingConfig(
        compression=Compression(compression),
        signature_version="v4" if signature == "v4" else "v1",
        signature_method=validate_signature_method(signature_method),
        region=region,
        batch_size=batch_size or 4096,
        batch_bytes=batch_bytes or 4 * _MiB,
        linger=linger,
        max_age=max_age or None,  # 0 = keep records until delivered, however long
    )
