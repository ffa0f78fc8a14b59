"""The daemon's configuration as values: frozen, validated dataclasses and nothing else.

Owns ``DaemonConfig`` (the whole daemon), ``SourceConfig`` (one ``[[spools]]`` /
``[[directories]]`` entry), ``SpoolTarget`` (what one spool's flusher is built from) and
``WatchMode``. ``ShippingConfig`` and ``DestinationConfig``, the tables the daemon shares with
the handlers' ``from_toml``, live in :mod:`yai_spool.settings.sections` and are re-exported
here. :mod:`yai_spool.daemon.config` builds all of them from TOML and the environment and
re-exports them; import them from there.

Invariants: every value is immutable, so a reload swaps whole values; ``__post_init__``
guards programmatic construction (the TOML parser reports friendlier messages first); no
credentials live here; nothing here reads a file or the environment except
``DaemonConfig.spool_paths``, which lists the configured directories when asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

from yai_spool.settings.sections import DestinationConfig, ShippingConfig
from yai_spool.sls.errors import ConfigError

__all__ = [
    "SPOOL_SUFFIX",
    "DaemonConfig",
    "DestinationConfig",
    "ShippingConfig",
    "SourceConfig",
    "SpoolTarget",
    "WatchMode",
]

SPOOL_SUFFIX = ".spool"


class WatchMode(StrEnum):
    """How the daemon notices new spools and writes."""

    AUTO = "auto"  # inotify where it works, polling otherwise
    INOTIFY = "inotify"  # inotify or fail at start
    POLL = "poll"  # stat the directories every poll_interval (NFS, FUSE, overlay oddities)


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
