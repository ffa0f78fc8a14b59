"""Configuration of the ``yai-spool run`` daemon: one TOML file plus a few environment variables.

Owns: the frozen, validated dataclasses the daemon runs from (``DaemonConfig``,
``ShippingConfig``, ``DestinationConfig``, ``SourceConfig``, ``SpoolTarget``), the TOML schema
(documented key by key in ``systemd/yai-spool.example.toml``) and the environment variables
the daemon honours. Nothing here does network I/O or touches a spool.

Invariants:

- Reading files and ``os.environ`` happens only in :func:`load_daemon_config` (the edge, style
  principle 10); everything it returns is immutable, so a reload swaps whole values.
- Every validation error names the key as written in the TOML (``spools[1].logstore``), what is
  wrong, and how to fix it (``...; e.g. logstore = "app-logs"``). All errors of a file are
  reported at once, one per line, in one :class:`~yai_spool.sls.errors.ConfigError`.
- Credentials are never part of the configuration: not in the TOML (a key that looks like one
  is refused with a pointer to the right place), not in these dataclasses. The daemon reads
  them from ``$CREDENTIALS_DIRECTORY`` or the ``ALIBABA_CLOUD_*`` variables at send time.
- Destinations layer: ``[defaults]`` < per ``[[directories]]`` entry < per ``[[spools]]``
  entry; the most specific value wins. ``project``/``logstore``/``topic`` left unset keep what
  the handler wrote into each spool row.

Environment (small on purpose):

- ``YAI_SPOOL_CONFIG``: path of the TOML file when ``--config`` is not given.
- ``YAI_SPOOL_ENDPOINT``: replaces ``[defaults].endpoint`` (``--endpoint`` wins over it).
- ``YAI_SPOOL_TIMEOUT_STOP_SEC``: the unit's ``TimeoutStopSec`` in seconds (systemd does not
  tell a service its own stop timeout, so the unit passes it); ``drain_timeout`` must leave
  ``STOP_MARGIN`` seconds under it.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from yai_spool.sls.compression import Compression
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.request import Endpoint, region_from_host, validate_logstore, validate_project
from yai_spool.sls.signing import (
    DEFAULT_SIGNATURE_METHOD,
    SIGNATURE_METHODS,
    SignatureMethod,
    validate_signature_method,
)

__all__ = [
    "ENV_CONFIG",
    "ENV_ENDPOINT",
    "ENV_TIMEOUT_STOP",
    "STOP_MARGIN",
    "DaemonConfig",
    "DestinationConfig",
    "ShippingConfig",
    "SourceConfig",
    "SpoolTarget",
    "WatchMode",
    "load_config",
    "load_daemon_config",
    "parse_daemon_config",
]

ENV_CONFIG = "YAI_SPOOL_CONFIG"
ENV_ENDPOINT = "YAI_SPOOL_ENDPOINT"
ENV_TIMEOUT_STOP = "YAI_SPOOL_TIMEOUT_STOP_SEC"

# Seconds kept between the end of the drain and systemd's SIGKILL: one in-flight request is
# abandoned after the drain deadline plus ~1 s, then spools close and the process exits.
STOP_MARGIN = 5.0

SPOOL_SUFFIX = ".spool"
_MiB = 1024 * 1024

# Keys that look like credentials get a dedicated message: they must never live in the TOML.
_SECRET_LIKE = frozenset(
    {
        "access_key_id",
        "access_key_secret",
        "access_key",
        "secret",
        "security_token",
        "sts_token",
        "password",
        "token",
    }
)
_CREDENTIALS_FIX = (
    "credentials never go into the configuration file; give them to the daemon with "
    "LoadCredential=sls-access-key-id:... and LoadCredential=sls-access-key-secret:... in the "
    "unit, or the ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET environment "
    "variables"
)


class WatchMode(StrEnum):
    """How the daemon notices new spools and writes."""

    AUTO = "auto"  # inotify where it works, polling otherwise
    INOTIFY = "inotify"  # inotify or fail at start
    POLL = "poll"  # stat the directories every poll_interval (NFS, FUSE, overlay oddities)


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


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One ``[[spools]]`` (a spool file) or ``[[directories]]`` (every ``*.spool`` in it) entry.

    ``destination`` already has ``[defaults]`` applied; ``key`` is ``spools[0]`` and the like,
    for messages.
    """

    kind: Literal["spool", "directory"]
    path: Path
    destination: DestinationConfig
    key: str


@dataclass(frozen=True, slots=True)
class SpoolTarget:
    """Everything a flusher of one spool file is built from; equal targets need no restart."""

    path: Path
    endpoint: str
    project: str | None
    logstore: str | None
    topic: str | None
    shipping: ShippingConfig
    source: str  # the config key that claimed the file, e.g. "directories[0]"

    @property
    def label(self) -> str:
        """``project/logstore`` as configured, ``*`` where the spool rows decide."""
        return f"{self.project or '*'}/{self.logstore or '*'}"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """The whole daemon configuration (see ``systemd/yai-spool.example.toml``)."""

    spools: tuple[SourceConfig, ...] = ()
    directories: tuple[SourceConfig, ...] = ()
    drain_timeout: float = 20.0
    watch: WatchMode = WatchMode.AUTO
    poll_interval: float = 1.0
    rescan_interval: float = 30.0
    status_interval: float = 5.0
    metrics_port: int | None = None
    log_level: str = "info"
    shipping: ShippingConfig = field(default_factory=ShippingConfig)
    source_file: Path | None = None

    def __post_init__(self) -> None:
        # The parser reports friendlier messages first; this guards programmatic construction.
        if not self.spools and not self.directories:
            raise ConfigError(
                "spools, directories: nothing to drain; add a [[directories]] entry with "
                'path = "/var/lib/yai-spool" or a [[spools]] entry with the path of a spool file'
            )
        object.__setattr__(self, "watch", WatchMode(self.watch))
        if self.drain_timeout < 0:
            raise ConfigError("drain_timeout: must be >= 0")
        for name in ("poll_interval", "rescan_interval", "status_interval"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be > 0")
        if self.metrics_port is not None and not 1 <= self.metrics_port <= 65535:
            raise ConfigError("metrics_port: must be in 1..65535")

    @property
    def watched_directories(self) -> tuple[Path, ...]:
        """Directories to watch: configured ones, plus the parents of listed spool files."""
        seen: dict[Path, None] = {}
        for source in self.directories:
            seen.setdefault(source.path)
        for source in self.spools:
            seen.setdefault(source.path.parent)
        return tuple(seen)

    @property
    def spool_paths(self) -> tuple[Path, ...]:
        """Every spool file this configuration covers right now: the listed ones plus the
        ``*.spool`` files currently in the listed directories (lists those directories)."""
        found: dict[Path, None] = dict.fromkeys(s.path for s in self.spools)
        for source in self.directories:
            try:
                names = sorted(os.listdir(source.path))
            except OSError:
                continue
            for name in names:
                path = source.path / name
                if name.endswith(SPOOL_SUFFIX) and not name.startswith(".") and path.is_file():
                    found.setdefault(path)
        return tuple(found)

    def adopts(self, path: Path) -> bool:
        """True if a spool file at ``path`` belongs to this configuration."""
        return path in {s.path for s in self.spools} or (
            path.name.endswith(SPOOL_SUFFIX) and path.parent in {d.path for d in self.directories}
        )

    def resolve(self, discovered: Mapping[Path, Iterable[Path]]) -> dict[Path, SpoolTarget]:
        """Targets for the listed spools plus the files ``discovered`` in each directory.

        A spool listed in ``[[spools]]`` keeps its own destination even when it also lies in
        a listed directory (the more specific entry wins).
        """
        targets: dict[Path, SpoolTarget] = {}
        for source in self.directories:
            for path in discovered.get(source.path, ()):
                targets.setdefault(path, self._target(path, source))
        for source in self.spools:
            targets[source.path] = self._target(source.path, source)
        return targets

    def _target(self, path: Path, source: SourceConfig) -> SpoolTarget:
        dest = source.destination
        assert dest.endpoint is not None  # validated: every source has one
        return SpoolTarget(
            path=path,
            endpoint=dest.endpoint,
            project=dest.project,
            logstore=dest.logstore,
            topic=dest.topic,
            shipping=self.shipping,
            source=source.key,
        )


# ------------------------------------------------------------------------------ parsing


class _Errors:
    """Collects every problem of a file so one run shows them all."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, key: str, problem: str, fix: str) -> None:
        self.lines.append(f"{key}: {problem}; {fix}")

    def raise_if_any(self, where: str | None) -> None:
        if self.lines:
            head = f"invalid configuration ({where}):" if where else "invalid configuration:"
            raise ConfigError("\n".join([head, *(f"  {line}" for line in self.lines)]))


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}.get(
        type(value), "table" if isinstance(value, Mapping) else type(value).__name__
    )


def _shown(value: object) -> str:
    text = repr(value) if not isinstance(value, str) else '"' + value + '"'
    return text if len(text) <= 60 else text[:57] + "..."


def _check_keys(
    table: Mapping[str, Any], allowed: Sequence[str], prefix: str, errors: _Errors
) -> None:
    for key in table:
        where = f"{prefix}{key}"
        if key.lower() in _SECRET_LIKE or "secret" in key.lower():
            errors.add(where, "credentials are not accepted here", _CREDENTIALS_FIX)
            continue
        if key in allowed:
            continue
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]}?" if close else "remove it"
        errors.add(where, "unknown key", f"{hint} (allowed here: {', '.join(sorted(allowed))})")


def _number(
    table: Mapping[str, Any],
    key: str,
    where: str,
    errors: _Errors,
    default: float,
    *,
    example: str,
    minimum: float = 0.0,
    exclusive: bool = True,
    maximum: float | None = None,
) -> float:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.add(where, f"must be a number of seconds, got {_shown(value)}", f"e.g. {example}")
        return default
    low_ok = value > minimum if exclusive else value >= minimum
    if not low_ok or (maximum is not None and value > maximum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        if maximum is not None:
            bound += f" and <= {maximum:g}"
        errors.add(where, f"must be {bound}, got {value!r}", f"e.g. {example}")
        return default
    return float(value)


def _integer(
    table: Mapping[str, Any],
    key: str,
    where: str,
    errors: _Errors,
    default: int | None,
    *,
    low: int,
    high: int,
    example: str,
) -> int | None:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(where, f"must be an integer, got {_shown(value)}", f"e.g. {example}")
        return default
    if not low <= value <= high:
        errors.add(where, f"must be in {low}..{high}, got {value}", f"e.g. {example}")
        return default
    return value


def _string(
    table: Mapping[str, Any], key: str, where: str, errors: _Errors, *, example: str
) -> str | None:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, str):
        errors.add(where, f"must be a string, got {_type_name(value)}", f"e.g. {example}")
        return None
    if not value.strip():
        errors.add(where, "is empty", f"remove the key or set it, e.g. {example}")
        return None
    return value


def _choice(
    table: Mapping[str, Any],
    key: str,
    where: str,
    errors: _Errors,
    *,
    choices: Sequence[str],
    default: str,
) -> str:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, str) or value.lower() not in choices:
        options = " | ".join(f'"{c}"' for c in choices)
        errors.add(
            where,
            f"must be one of {options}, got {_shown(value)}",
            f"e.g. {key} = {options.split(' | ')[0]}",
        )
        return default
    return value.lower()


_DEST_KEYS = ("endpoint", "project", "logstore", "topic")


def _destination(table: Mapping[str, Any], prefix: str, errors: _Errors) -> DestinationConfig:
    endpoint = _string(
        table,
        "endpoint",
        f"{prefix}endpoint",
        errors,
        example='endpoint = "cn-hangzhou.log.aliyuncs.com"',
    )
    if endpoint is not None:
        try:
            Endpoint.parse(endpoint)
        except ConfigError as exc:
            errors.add(
                f"{prefix}endpoint",
                str(exc),
                'use a host name or URL, e.g. endpoint = "https://cn-hangzhou.log.aliyuncs.com"',
            )
            endpoint = None
    project = _string(
        table, "project", f"{prefix}project", errors, example='project = "my-project"'
    )
    if project is not None:
        try:
            validate_project(project)
        except ConfigError as exc:
            errors.add(f"{prefix}project", str(exc), 'e.g. project = "my-project"')
            project = None
    logstore = _string(
        table, "logstore", f"{prefix}logstore", errors, example='logstore = "app-logs"'
    )
    if logstore is not None:
        try:
            validate_logstore(logstore)
        except ConfigError as exc:
            errors.add(f"{prefix}logstore", str(exc), 'e.g. logstore = "app-logs"')
            logstore = None
    topic = None
    if "topic" in table:
        # An empty topic is meaningful (SLS's default), so it is allowed here.
        value = table["topic"]
        if isinstance(value, str):
            topic = value
        else:
            errors.add(
                f"{prefix}topic", f"must be a string, got {_type_name(value)}", 'e.g. topic = "web"'
            )
    return DestinationConfig(endpoint, project, logstore, topic)


def _shipping(table: Mapping[str, Any], errors: _Errors) -> ShippingConfig:
    p = "shipping."
    _check_keys(
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
    compression = _choice(
        table,
        "compression",
        p + "compression",
        errors,
        choices=[c.value for c in Compression],
        default="lz4",
    )
    signature = _choice(
        table,
        "signature_version",
        p + "signature_version",
        errors,
        choices=["v1", "v4"],
        default="v1",
    )
    signature_method = _choice(
        table,
        "signature_method",
        p + "signature_method",
        errors,
        choices=list(SIGNATURE_METHODS),
        default=DEFAULT_SIGNATURE_METHOD,
    )
    region = _string(table, "region", p + "region", errors, example='region = "cn-hangzhou"')
    batch_size = _integer(
        table,
        "batch_size",
        p + "batch_size",
        errors,
        4096,
        low=1,
        high=40_960,
        example="batch_size = 4096",
    )
    batch_bytes = _integer(
        table,
        "batch_bytes",
        p + "batch_bytes",
        errors,
        4 * _MiB,
        low=1024,
        high=8 * _MiB,
        example="batch_bytes = 4194304",
    )
    linger = _number(
        table, "linger", p + "linger", errors, 0.5, example="linger = 0.5", exclusive=False
    )
    max_age = _number(
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


def _path(value: object, where: str, base: Path, errors: _Errors, example: str) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        problem = "missing" if value is None else f"must be a non-empty string, got {_shown(value)}"
        errors.add(where, problem, f"set it, e.g. {example}")
        return None
    path = Path(os.path.expanduser(value))
    # Relative paths are relative to the configuration file, not to the daemon's cwd
    # (systemd starts services in /).
    return Path(os.path.normpath(base / path))


def _sources(
    raw: object,
    name: Literal["spools", "directories"],
    defaults: DestinationConfig,
    base: Path,
    errors: _Errors,
) -> list[SourceConfig]:
    kind: Literal["spool", "directory"] = "spool" if name == "spools" else "directory"
    example = (
        'path = "/var/lib/yai-spool/app.spool"'
        if kind == "spool"
        else 'path = "/var/lib/yai-spool"'
    )
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(t, Mapping) for t in raw):
        errors.add(
            name,
            f"must be an array of tables, got {_type_name(raw)}",
            f"write each entry as [[{name}]] followed by {example}",
        )
        return []
    out: list[SourceConfig] = []
    seen: dict[Path, str] = {}
    for i, table in enumerate(raw):
        key = f"{name}[{i}]"
        _check_keys(table, ("path", *_DEST_KEYS), f"{key}.", errors)
        path = _path(table.get("path"), f"{key}.path", base, errors, example)
        dest = _destination(table, f"{key}.", errors).over(defaults)
        if path is None:
            continue
        if path in seen:
            errors.add(
                f"{key}.path",
                f"{path} is listed twice (also {seen[path]})",
                "remove one of the entries",
            )
            continue
        seen[path] = key
        if kind == "spool" and path.name.endswith((".spool-wal", ".spool-shm", ".lock")):
            errors.add(
                f"{key}.path",
                f"{path.name} is a companion file, not a spool",
                f"name the spool database itself, e.g. {example}",
            )
            continue
        if dest.endpoint is None:
            errors.add(
                f"{key}.endpoint",
                "missing (and no [defaults].endpoint)",
                'set endpoint = "cn-hangzhou.log.aliyuncs.com" in this entry or in '
                "[defaults], or set YAI_SPOOL_ENDPOINT",
            )
            continue
        out.append(SourceConfig(kind, path, dest, key))
    return out


_TOP_KEYS = (
    "drain_timeout",
    "watch",
    "poll_interval",
    "rescan_interval",
    "status_interval",
    "metrics_port",
    "log_level",
    "defaults",
    "shipping",
    "spools",
    # Read by yai_spool.handlers.configure.from_toml (the application's handler); the daemon ignores
    # it so one file can configure both sides.
    "handler",
    "directories",
)


def parse_daemon_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    source_file: Path | None = None,
    endpoint: str | None = None,
    extra_paths: Sequence[Path] = (),
    timeout_stop: str | None = None,
) -> DaemonConfig:
    """Validate parsed TOML (plus command-line additions) into a :class:`DaemonConfig`.

    Args:
        data: the TOML document as a mapping.
        base_dir: directory relative ``path`` values are resolved against.
        source_file: the file ``data`` came from, for messages.
        endpoint: replaces ``[defaults].endpoint`` (``--endpoint`` / ``YAI_SPOOL_ENDPOINT``).
        extra_paths: spool files or directories named on the command line; a path that is an
            existing directory (or does not end in ``.spool``) is a directory entry.
        timeout_stop: the raw ``YAI_SPOOL_TIMEOUT_STOP_SEC`` value, if set.

    Raises:
        ConfigError: every problem found, one per line, each naming the key and the fix.
    """
    errors = _Errors()
    _check_keys(data, _TOP_KEYS, "", errors)

    defaults_raw = data.get("defaults", {})
    if not isinstance(defaults_raw, Mapping):
        errors.add("defaults", "must be a table", "write it as [defaults] followed by its keys")
        defaults_raw = {}
    _check_keys(defaults_raw, _DEST_KEYS, "defaults.", errors)
    defaults = _destination(defaults_raw, "defaults.", errors)
    if endpoint is not None:
        try:
            Endpoint.parse(endpoint)
            defaults = DestinationConfig(endpoint=endpoint).over(defaults)
        except ConfigError as exc:
            errors.add(
                ENV_ENDPOINT + " / --endpoint",
                str(exc),
                "use a host name or URL, e.g. https://cn-hangzhou.log.aliyuncs.com",
            )

    shipping_raw = data.get("shipping", {})
    if not isinstance(shipping_raw, Mapping):
        errors.add("shipping", "must be a table", "write it as [shipping] followed by its keys")
        shipping_raw = {}
    shipping = _shipping(shipping_raw, errors)

    spools = _sources(data.get("spools"), "spools", defaults, base_dir, errors)
    directories = _sources(data.get("directories"), "directories", defaults, base_dir, errors)
    known = {s.path for s in spools} | {d.path for d in directories}
    for i, raw_path in enumerate(extra_paths):
        path = Path(os.path.abspath(raw_path))
        if path in known:
            continue
        known.add(path)
        key = f"argument {i + 1} ({path})"
        if defaults.endpoint is None:
            errors.add(
                key,
                "no endpoint to ship to",
                "pass --endpoint URL, set YAI_SPOOL_ENDPOINT, or set [defaults].endpoint",
            )
            continue
        is_dir = path.is_dir() or not path.name.endswith(SPOOL_SUFFIX)
        target = directories if is_dir else spools
        target.append(SourceConfig("directory" if is_dir else "spool", path, defaults, key))

    if shipping.signature_version == "v4" and shipping.region is None:
        for source in (*spools, *directories):
            host = Endpoint.parse(source.destination.endpoint or "").host
            if region_from_host(host) is None:
                errors.add(
                    "shipping.region",
                    f'missing: signature_version = "v4" needs a region and {source.key} '
                    f"uses endpoint {host}, which names none",
                    'set region = "cn-hangzhou" (the region of the project)',
                )
                break
    drain = _number(
        data,
        "drain_timeout",
        "drain_timeout",
        errors,
        20.0,
        example="drain_timeout = 20",
        exclusive=False,
    )
    if timeout_stop is not None:
        try:
            stop = float(timeout_stop)
            if not math.isfinite(stop) or stop <= 0:
                raise ValueError(timeout_stop)
        except ValueError:
            errors.add(
                ENV_TIMEOUT_STOP,
                f"must be a number of seconds, got {_shown(timeout_stop)}",
                "set it to the unit's TimeoutStopSec in seconds, e.g. "
                f"Environment={ENV_TIMEOUT_STOP}=30",
            )
        else:
            if drain + STOP_MARGIN > stop:
                errors.add(
                    "drain_timeout",
                    f"{drain:g} s does not fit TimeoutStopSec={stop:g}s "
                    f"({ENV_TIMEOUT_STOP}): systemd would SIGKILL the drain",
                    f"set drain_timeout <= {max(stop - STOP_MARGIN, 0):g} or raise "
                    f"TimeoutStopSec (and {ENV_TIMEOUT_STOP}) to >= {drain + STOP_MARGIN:g}",
                )
    watch = _choice(
        data, "watch", "watch", errors, choices=[m.value for m in WatchMode], default="auto"
    )
    poll = _number(
        data,
        "poll_interval",
        "poll_interval",
        errors,
        1.0,
        example="poll_interval = 1",
        maximum=3600,
    )
    rescan = _number(
        data,
        "rescan_interval",
        "rescan_interval",
        errors,
        30.0,
        example="rescan_interval = 30",
        maximum=86400,
    )
    status = _number(
        data,
        "status_interval",
        "status_interval",
        errors,
        5.0,
        example="status_interval = 5",
        maximum=3600,
    )
    metrics_port = _integer(
        data,
        "metrics_port",
        "metrics_port",
        errors,
        None,
        low=1,
        high=65535,
        example="metrics_port = 9464",
    )
    log_level = _choice(
        data,
        "log_level",
        "log_level",
        errors,
        choices=["debug", "info", "warning", "error"],
        default="info",
    )
    if not spools and not directories and not errors.lines:
        errors.add(
            "spools, directories",
            "nothing to drain",
            'add [[directories]] with path = "/var/lib/yai-spool", or [[spools]] with '
            "the path of a spool file",
        )
    errors.raise_if_any(str(source_file) if source_file else None)
    return DaemonConfig(
        spools=tuple(spools),
        directories=tuple(directories),
        drain_timeout=drain,
        watch=WatchMode(watch),
        poll_interval=poll,
        rescan_interval=rescan,
        status_interval=status,
        metrics_port=metrics_port,
        log_level=log_level,
        shipping=shipping,
        source_file=source_file,
    )


def load_daemon_config(
    config_path: str | os.PathLike[str] | None = None,
    *,
    paths: Sequence[str | os.PathLike[str]] = (),
    endpoint: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> DaemonConfig:
    """Read the TOML file and the environment into a :class:`DaemonConfig` (the edge).

    ``config_path`` falls back to ``$YAI_SPOOL_CONFIG``; ``endpoint`` to
    ``$YAI_SPOOL_ENDPOINT``. Without a file, ``paths`` alone (spool files or directories)
    make a configuration, with the endpoint from the argument or the environment.

    Raises:
        ConfigError: unreadable file, TOML syntax, or validation (naming keys and fixes).
    """
    env = os.environ if environ is None else environ
    chosen = config_path if config_path is not None else env.get(ENV_CONFIG) or None
    endpoint = endpoint if endpoint is not None else env.get(ENV_ENDPOINT) or None
    data: Mapping[str, Any] = {}
    source: Path | None = None
    base = Path.cwd()
    if chosen is not None:
        source = Path(os.path.abspath(chosen))
        origin = "--config" if config_path is not None else ENV_CONFIG
        try:
            with open(source, "rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            raise ConfigError(
                f"{origin}: {source} does not exist; create it (see "
                "systemd/yai-spool.example.toml) or point --config / YAI_SPOOL_CONFIG at it"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{origin}: cannot read {source} ({exc.strerror}); check the path and that "
                "the daemon's user may read it"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"{source}: TOML syntax error: {exc}; fix that line (strings need double "
                'quotes, e.g. logstore = "app-logs")'
            ) from None
        base = source.parent
    elif not paths:
        raise ConfigError(
            f"--config: no configuration; pass --config FILE, set {ENV_CONFIG}, or name the "
            "spool files / directories to drain as arguments (with --endpoint)"
        )
    return parse_daemon_config(
        data,
        base_dir=base,
        source_file=source,
        endpoint=endpoint,
        extra_paths=[Path(p) for p in paths],
        timeout_stop=env.get(ENV_TIMEOUT_STOP) or None,
    )


# The name the CLI commands (status, doctor) look up; same function.
load_config = load_daemon_config
