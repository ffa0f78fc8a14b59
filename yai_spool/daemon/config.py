"""Configuration of the ``yai-spool run`` daemon: one TOML file plus a few environment variables.

Owns: the TOML schema (documented key by key in ``systemd/yai-spool.example.toml``), its
validation into the frozen dataclasses the daemon runs from (defined in
:mod:`yai_spool.daemon.config_types` and re-exported here: ``DaemonConfig``,
``ShippingConfig``, ``DestinationConfig``, ``SourceConfig``, ``SpoolTarget``, ``WatchMode``)
and the environment variables the daemon honours. The typed value readers are
:mod:`yai_spool.settings.fields`; the ``[defaults]`` and ``[shipping]`` tables, which the
handlers' ``from_toml`` reads too, :mod:`yai_spool.settings.sections`. Nothing here does
network I/O or touches a spool.

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

import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from yai_spool.daemon import config_types
from yai_spool.daemon.config_types import (
    SPOOL_SUFFIX,
    DaemonConfig,
    SourceConfig,
    SpoolTarget,  # noqa: F401 - not used here, re-exported (config_types.__all__)
    WatchMode,
)
from yai_spool.settings.fields import (
    Errors,
    check_keys,
    choice,
    integer,
    number,
    shown,
    type_name,
)
from yai_spool.settings.sections import (
    DEST_KEYS,
    ENV_CONFIG,
    DestinationConfig,
    ShippingConfig,  # noqa: F401 - not used here, re-exported (config_types.__all__)
    parse_destination,
    parse_shipping,
)
from yai_spool.sls.errors import ConfigError
from yai_spool.sls.request import Endpoint, region_from_host

__all__ = [
    "ENV_CONFIG",
    "ENV_ENDPOINT",
    "ENV_TIMEOUT_STOP",
    "STOP_MARGIN",
    "load_config",
    "load_daemon_config",
    "parse_daemon_config",
]
# The value types are re-exported whole: callers import them from here (see config_types).
__all__ += config_types.__all__

ENV_ENDPOINT = "YAI_SPOOL_ENDPOINT"
ENV_TIMEOUT_STOP = "YAI_SPOOL_TIMEOUT_STOP_SEC"

# Seconds kept between the end of the drain and systemd's SIGKILL: one in-flight request is
# abandoned after the drain deadline plus ~1 s, then spools close and the process exits.
STOP_MARGIN = 5.0

_MiB = 1024 * 1024

#: The top-level intervals (seconds): key (also the DaemonConfig field) -> (default, maximum).
_INTERVALS: dict[str, tuple[float, float]] = {
    "poll_interval": (1.0, 3600),
    "rescan_interval": (30.0, 86400),
    "status_interval": (5.0, 3600),
}


# ------------------------------------------------------------------------------ parsing


def _path(value: object, where: str, base: Path, errors: Errors, example: str) -> Path | None:
    if not isinstance(value, str) or not value.strip():
        problem = "missing" if value is None else f"must be a non-empty string, got {shown(value)}"
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
    errors: Errors,
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
            f"must be an array of tables, got {type_name(raw)}",
            f"write each entry as [[{name}]] followed by {example}",
        )
        return []
    out: list[SourceConfig] = []
    seen: dict[Path, str] = {}
    for i, table in enumerate(raw):
        key = f"{name}[{i}]"
        check_keys(table, ("path", *DEST_KEYS), f"{key}.", errors)
        path = _path(table.get("path"), f"{key}.path", base, errors, example)
        dest = parse_destination(table, f"{key}.", errors).over(defaults)
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
    errors = Errors()
    check_keys(data, _TOP_KEYS, "", errors)

    defaults_raw = data.get("defaults", {})
    if not isinstance(defaults_raw, Mapping):
        errors.add("defaults", "must be a table", "write it as [defaults] followed by its keys")
        defaults_raw = {}
    check_keys(defaults_raw, DEST_KEYS, "defaults.", errors)
    defaults = parse_destination(defaults_raw, "defaults.", errors)
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
    shipping = parse_shipping(shipping_raw, errors)

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
    drain = number(
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
                f"must be a number of seconds, got {shown(timeout_stop)}",
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
    watch = choice(
        data, "watch", "watch", errors, choices=[m.value for m in WatchMode], default="auto"
    )
    intervals = {
        key: number(data, key, key, errors, default, example=f"{key} = {default:g}", maximum=most)
        for key, (default, most) in _INTERVALS.items()
    }
    metrics_port = integer(
        data,
        "metrics_port",
        "metrics_port",
        errors,
        None,
        low=1,
        high=65535,
        example="metrics_port = 9464",
    )
    log_level = choice(
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
        metrics_port=metrics_port,
        log_level=log_level,
        shipping=shipping,
        source_file=source_file,
        **intervals,
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
