"""The options of every handler: one frozen, validated dataclass per mode, built once.

Owns every keyword argument a handler takes (its name, type, default and check) and what the
handler is built from: :class:`ClientOptions` (the PutLogs client), the flusher and queue
configurations. Keywords (``SpoolHandler(project=..., ...)``), ``dictConfig`` entries and the
TOML ``[handler]`` table (:mod:`yai_spool.handlers.configure`) all build the same object.

The classes follow the modes: :class:`HandlerOptions` holds what every mode takes (destination,
credentials, LogGroup fields, field selection, retry, signing, level), :class:`QueueOptions`
adds batching and bounds for the queued modes, and one leaf per handler adds its own:
:class:`SpoolOptions` (``SpoolHandler``) here; ``AsyncSpoolOptions``, ``MemoryOptions`` and
``SyncOptions`` beside their handlers (:mod:`~yai_spool.handlers.async_spool`,
:mod:`~yai_spool.handlers.memory`, :mod:`~yai_spool.handlers.sync`), so a process that only
builds ``SpoolHandler`` does not pay for building the other modes' dataclasses at import.
A new option shared by all modes is one field of :class:`HandlerOptions`.

Invariants:

- An options object is frozen and valid: ``__post_init__`` turns plain values into objects
  (``retry`` mapping -> ``RetryPolicy``, ``tags`` -> ``str`` pairs, ``level`` names) and runs
  every check that needs no I/O: credentials, endpoint and signing (``ConfigError``), choices
  and ranges (``ValueError``, or the configurations' own ``ValueError``). So a handler can
  refuse its arguments before ``logging.Handler.__init__`` registers it for
  ``logging.shutdown()``.
- A handler takes exactly the init fields of its options class; :meth:`from_keywords` names
  an unknown key (with a did-you-mean) and a key the mode fixes.
- No secret appears in a repr (keys and the provider are ``repr=False``).
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, Field, dataclass, field
from dataclasses import fields as dataclass_fields
from typing import TYPE_CHECKING, Any, Final, Literal, Self

from yai_spool.shipping.config import FlusherConfig
from yai_spool.shipping.cycle import Sender
from yai_spool.shipping.retry import DEFAULT_RETRY, RetryPolicy
from yai_spool.sls.compression import Compression
from yai_spool.sls.credentials import CredentialsProvider, resolve_credentials
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.request import Endpoint, region_from_host
from yai_spool.sls.signing import (
    DEFAULT_SIGNATURE_METHOD,
    SignatureMethod,
    validate_signature_method,
)
from yai_spool.spool import SpoolConfig

if TYPE_CHECKING:
    from yai_spool.sls.client import AsyncPutLogsClient, ClientTimeouts, PutLogsClient

__all__ = [
    "MAPPER_OPTIONS",
    "ClientOptions",
    "HandlerOptions",
    "QueueOptions",
    "SpoolOptions",
    "as_retry",
    "as_timeouts",
]

_MiB: Final = 1024 * 1024


# --------------------------------------------------------------------------- plain values


def as_timeouts(value: ClientTimeouts | Mapping[str, float] | float | None) -> ClientTimeouts:
    """``ClientTimeouts`` from a value, a mapping of its fields (TOML), or a total in seconds.

    A bare number is the whole call's deadline; connect/pool are capped at it too.
    """
    from yai_spool.sls.client import ClientTimeouts  # noqa: PLC0415 - httpx loads only to ship

    if value is None:
        return ClientTimeouts()
    if isinstance(value, ClientTimeouts):
        return value
    if isinstance(value, Mapping):
        return ClientTimeouts(**{k: float(v) for k, v in value.items()})
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"timeout must be seconds or ClientTimeouts, got {value!r}")
    total = float(value)
    return ClientTimeouts(
        connect=min(5.0, total), read=total, write=total, pool=min(5.0, total), total=total
    )


def as_retry(value: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy:
    """A ``RetryPolicy`` from itself or a mapping of its fields (dictConfig, TOML)."""
    if value is None:
        return DEFAULT_RETRY
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, Mapping):
        try:
            return RetryPolicy(**dict(value))
        except TypeError as exc:
            raise ConfigError(f"retry: {exc}") from None
    raise ConfigError(f"retry must be a RetryPolicy or a mapping, got {type(value).__name__}")


def _as_level(value: int | str) -> int | str:
    """A handler level: an int, or a level name in any case (``"info"`` -> ``"INFO"``).

    The checks and messages of ``logging.Handler.__init__``, made before it runs.
    """
    if isinstance(value, str):
        name = value.upper()
        if name not in logging.getLevelNamesMapping():
            raise ValueError(f"Unknown level: {value!r}")
        return name
    if not isinstance(value, int):
        raise TypeError(f"Level not an integer or a valid string: {value!r}")
    return value


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class ClientOptions:
    """Everything a PutLogs client of any mode is built from (never a secret in the repr)."""

    endpoint: str | None
    credentials: CredentialsProvider = field(repr=False)
    compression: Compression = Compression.LZ4
    signature_version: Literal["v1", "v4"] = "v1"
    region: str | None = None
    timeouts: ClientTimeouts | None = None
    proxy: str | None = None
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD

    @classmethod
    def build(
        cls,
        endpoint: str | None,
        *,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        security_token: str | None = None,
        credentials_provider: CredentialsProvider | None = None,
        compression: Compression | str = Compression.LZ4,
        signature_version: Literal["v1", "v4"] = "v1",
        signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD,
        region: str | None = None,
        timeouts: Any = None,
        proxy: str | None = None,
    ) -> ClientOptions:
        """Validate constructor-style arguments (raises ``ConfigError``/``ValueError``)."""
        provider = resolve_credentials(
            access_key_id=access_key_id,
            access_key_secret=access_key_secret,
            security_token=security_token,
            provider=credentials_provider,
        )
        if signature_version not in ("v1", "v4"):
            raise ConfigError(f"signature_version must be 'v1' or 'v4', got {signature_version!r}")
        return cls(
            endpoint,
            provider,
            Compression(compression),
            signature_version,
            region,
            None if timeouts is None else as_timeouts(timeouts),
            proxy,
            signature_method=validate_signature_method(signature_method),
        )

    def check(self) -> None:
        """Validate what the client would refuse when built, without importing httpx.

        Lets a handler fail in its constructor (and ``dictConfig`` at startup) on a bad
        endpoint or a V4 signature without a region, while the client itself is built only
        on the first send (``core.LazySender``).

        Raises:
            ConfigError: no endpoint, an endpoint that does not parse, V4 without a region.
        """
        if self.endpoint is None:
            raise ConfigError("endpoint is required to ship records")
        host = Endpoint.parse(self.endpoint).host
        if self.signature_version == "v4" and not (self.region or region_from_host(host)):
            raise ConfigError("signature_version='v4' needs region= (e.g. 'cn-hangzhou')")

    def _kwargs(self) -> dict[str, Any]:
        if self.endpoint is None:
            raise ConfigError("endpoint is required to ship records")
        # Every other field is a client keyword of the same name (a new option reaches the
        # client by being declared here); unset timeouts leave the client's own default.
        kwargs: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in dataclass_fields(self)
            if f.name not in _NOT_AS_IS
        }
        kwargs["credentials_provider"] = self.credentials
        if self.timeouts is not None:
            kwargs["timeouts"] = self.timeouts
        return kwargs

    def sync_client(self) -> PutLogsClient:
        """A blocking client (thread flushers, the synchronous handler)."""
        from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415 - httpx loads only to ship

        return PutLogsClient(self.endpoint or "", **self._kwargs())

    def async_client(self) -> AsyncPutLogsClient:
        """A native asyncio client (the asyncio flusher): no thread pool for network I/O."""
        from yai_spool.sls.client import AsyncPutLogsClient  # noqa: PLC0415

        return AsyncPutLogsClient(self.endpoint or "", **self._kwargs())


#: ClientOptions fields not passed to the client as ``name=value``: the endpoint is its
#: positional argument, the provider is ``credentials_provider=``, timeouts only when set.
_NOT_AS_IS: Final = frozenset({"endpoint", "credentials", "timeouts"})


# --------------------------------------------------------------------------- field kinds


#: Field metadata: an option of ``aliyun.log.QueuedLogHandler`` passed to ``RecordMapper``
#: (same name and meaning), or one of ours passed the same way.
_SDK: Final = {"mapper": "sdk"}
_OURS: Final = {"mapper": "ours"}


# --------------------------------------------------------------------------- every mode


# A base, never built itself: each mode's leaf generates __init__/__repr__/__eq__ over all
# the fields, so generating them here too would only cost import time.
@dataclass(frozen=True, kw_only=True, init=False, repr=False, eq=False)
class HandlerOptions:
    """What every handler takes (see ``SpoolHandler`` for the meaning of each keyword)."""

    project: str
    logstore: str
    endpoint: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    access_key_secret: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    credentials_provider: CredentialsProvider | None = field(default=None, repr=False)
    topic: str = ""
    source: str | None = None
    tags: Mapping[str, str] | None = None
    fields: Iterable[Any] | None = field(default=None, metadata=_SDK)
    extra: bool | None = field(default=True, metadata=_SDK)
    buildin_fields_prefix: str | None = field(default=None, metadata=_SDK)
    buildin_fields_suffix: str | None = field(default=None, metadata=_SDK)
    extract_json: bool | None = field(default=None, metadata=_SDK)
    extract_json_drop_message: bool | None = field(default=None, metadata=_SDK)
    extract_json_prefix: str | None = field(default=None, metadata=_SDK)
    extract_json_suffix: str | None = field(default=None, metadata=_SDK)
    extract_kv: bool | None = field(default=None, metadata=_SDK)
    extract_kv_drop_message: bool | None = field(default=None, metadata=_SDK)
    extract_kv_prefix: str | None = field(default=None, metadata=_SDK)
    extract_kv_suffix: str | None = field(default=None, metadata=_SDK)
    extract_kv_sep: str | None = field(default=None, metadata=_SDK)
    otel: bool = field(default=True, metadata=_OURS)
    otel_keys: Mapping[str, str | None] | None = field(default=None, metadata=_OURS)
    retry: RetryPolicy = DEFAULT_RETRY  # or a mapping of its fields, or None: see as_retry
    compression: str = "lz4"
    signature_version: Literal["v1", "v4"] = "v1"
    signature_method: SignatureMethod = DEFAULT_SIGNATURE_METHOD
    region: str | None = None
    sender_factory: Callable[[], Sender] | None = None
    level: int | str = logging.NOTSET

    #: The PutLogs client's options (validated; the client is built on the first send).
    client: ClientOptions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        put = object.__setattr__  # frozen: plain values become objects once, here
        put(self, "retry", as_retry(self.retry))
        if isinstance(self.tags, Mapping):
            put(self, "tags", {str(k): str(v) for k, v in self.tags.items()})
        put(self, "level", _as_level(self.level))
        self._check()
        client = ClientOptions.build(
            self.endpoint,
            access_key_id=self.access_key_id,
            access_key_secret=self.access_key_secret,
            security_token=self.security_token,
            credentials_provider=self.credentials_provider,
            compression=self.compression,
            signature_version=self.signature_version,
            signature_method=self.signature_method,
            region=self.region,
            **self._client_extras(),
        )
        put(self, "client", client)
        self._derive()
        if self.uses_own_client():
            client.check()  # a bad endpoint fails here, not on the first send

    # -- what a mode adds (overridden by the leaves) ----------------------------------------

    def _check(self) -> None:
        """The mode's own choices and ranges (``ValueError``), before the client is built."""
        if self.endpoint is None and self.sender_factory is None:
            raise ValueError("endpoint is required")

    def _client_extras(self) -> dict[str, Any]:
        """Client options only some modes take (``timeouts``, ``proxy``)."""
        return {}

    def _derive(self) -> None:
        """Build the mode's configurations (their own ``ValueError`` s)."""

    def uses_own_client(self) -> bool:
        """True when records ship through our client (no test ``sender_factory``)."""
        return self.sender_factory is None

    # -- derived views ---------------------------------------------------------------------

    def mapper_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~yai_spool.handlers.mapping.RecordMapper`."""
        return {name: getattr(self, name) for name in _MAPPER_FIELDS}

    # -- the keyword surface ---------------------------------------------------------------

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        """The keyword arguments of this mode, in declaration order."""
        return tuple(f.name for f in dataclass_fields(cls) if f.init)

    @classmethod
    def fixed(cls) -> dict[str, str]:
        """Keywords of a parent mode this mode fixes -> why (said when one is given)."""
        return {f.name: f.metadata["fixed"] for f in dataclass_fields(cls) if "fixed" in f.metadata}

    @classmethod
    def from_keywords(cls, owner: str, keywords: Mapping[str, Any]) -> Self:
        """Build from a handler's keywords; a ``TypeError`` names an unknown or fixed key."""
        names = cls.keywords()
        for key in keywords:
            if key in names:
                continue
            reason = cls.fixed().get(key)
            if reason is not None:
                raise TypeError(f"{owner}'s {key} is {reason}")
            import difflib  # noqa: PLC0415 - only a mistyped keyword pays for it

            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}{hint}")
        missing = [
            f.name
            for f in dataclass_fields(cls)
            if f.init and f.default is MISSING and f.default_factory is MISSING
            if f.name not in keywords
        ]
        if missing:
            raise TypeError(f"{owner}() missing required keyword arguments: {missing!r}")
        return cls(**keywords)

    @classmethod
    def signature(cls) -> inspect.Signature:
        """``(options=None, /, *, <every keyword with its default>)``: a handler's signature."""
        params = [inspect.Parameter("options", inspect.Parameter.POSITIONAL_ONLY, default=None)]
        params += [_keyword(f) for f in dataclass_fields(cls) if f.init]
        return inspect.Signature(params)


def _keyword(f: Field[Any]) -> inspect.Parameter:
    default = inspect.Parameter.empty if f.default is MISSING else f.default
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=f.type
    )


#: Field-selection options with the names and meaning of ``aliyun.log.QueuedLogHandler``,
#: passed unchanged to :class:`~yai_spool.handlers.mapping.RecordMapper` by every handler.
MAPPER_OPTIONS: Final = tuple(
    f.name for f in dataclass_fields(HandlerOptions) if f.metadata.get("mapper") == "sdk"
)
_MAPPER_FIELDS: Final = tuple(
    f.name for f in dataclass_fields(HandlerOptions) if "mapper" in f.metadata
)


# --------------------------------------------------------------------------- queued modes

_FLUSHER_DEFAULTS: Final = FlusherConfig()


# A base, never built itself: each mode's leaf generates __init__/__repr__/__eq__ over all
# the fields, so generating them here too would only cost import time.
@dataclass(frozen=True, kw_only=True, init=False, repr=False, eq=False)
class QueueOptions(HandlerOptions):
    """What the queued modes add: the queue's overflow rule, batching, flush/close bounds."""

    flusher: str = "thread"  # narrowed by each mode (its choices are checked there)
    when_full: str = "drop_oldest"
    block_timeout: float = 1.0
    # Batching: the flusher's own defaults (FlusherConfig owns them and their limits).
    batch_size: int = _FLUSHER_DEFAULTS.max_batch_records
    batch_bytes: int = _FLUSHER_DEFAULTS.max_batch_bytes
    linger: float = _FLUSHER_DEFAULTS.linger
    max_in_flight: int = 4
    flush_timeout: float = 5.0
    close_timeout: float = 5.0

    flusher_config: FlusherConfig = field(init=False, repr=False, compare=False)

    def _derive(self) -> None:
        object.__setattr__(
            self,
            "flusher_config",
            FlusherConfig(
                max_batch_records=self.batch_size,
                max_batch_bytes=self.batch_bytes,
                linger=self.linger,
                retry=self.retry,
                **self._flusher_extras(),
            ),
        )

    def _flusher_extras(self) -> dict[str, Any]:
        return {}

    def _check_in_flight(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {self.max_in_flight!r}")


FlusherMode = Literal["thread", "none"]
QueueFlusher = Literal["thread", "asyncio"]


@dataclass(frozen=True, kw_only=True)
class SpoolOptions(QueueOptions):
    """``SpoolHandler``: the durable spool, and the flusher thread that may drain it."""

    spool_path: str | os.PathLike[str] | None = None
    flusher: FlusherMode = "thread"
    max_spool_records: int = 1_000_000
    max_spool_bytes: int = 256 * _MiB
    synchronous: str = "NORMAL"
    max_in_flight: int = 2

    spool_config: SpoolConfig = field(init=False, repr=False, compare=False)

    def _check(self) -> None:
        if self.flusher not in ("thread", "none"):
            raise ValueError(f"flusher must be 'thread' or 'none', got {self.flusher!r}")
        if self.flusher == "thread" and self.endpoint is None and self.sender_factory is None:
            raise ValueError("endpoint is required unless flusher='none'")

    def _derive(self) -> None:
        object.__setattr__(
            self,
            "spool_config",
            SpoolConfig(
                max_records=self.max_spool_records,
                max_bytes=self.max_spool_bytes,
                when_full=self.when_full,  # type: ignore[arg-type]  # validated by SpoolConfig
                block_timeout=self.block_timeout,
                synchronous=self.synchronous,  # type: ignore[arg-type]
            ),
        )
        super()._derive()

    def _flusher_extras(self) -> dict[str, Any]:
        return {"max_in_flight": self.max_in_flight}

    def uses_own_client(self) -> bool:
        return self.flusher == "thread" and self.sender_factory is None
