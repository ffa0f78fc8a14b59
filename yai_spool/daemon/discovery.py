"""Finding spools and noticing writes: directory scans plus a watchdog observer.

Owns: which files count as spools (``*.spool`` regular files; never the ``-wal``/``-shm``/
``.lock``/``.corrupt-*`` companions), the scan of a directory, and the observer thread that
turns file-system events into two callbacks: *a spool was written* (wake its flusher) and
*something appeared or vanished* (ask the main loop to rescan).

Modes: ``inotify`` (watchdog's ``InotifyObserver``: a write wakes a flusher within
milliseconds), ``poll`` (``PollingObserver``: stat every ``poll_interval``; for NFS/FUSE where
inotify sees nothing), ``auto`` (inotify, falling back to polling when inotify cannot be set up,
e.g. ``fs.inotify.max_user_watches`` exhausted). Polling is also always in place underneath: the
main loop rescans every ``rescan_interval`` and each flusher looks at its spool every
``poll_interval``, so a lost event delays records, it never strands them.

Invariants: callbacks run on the observer thread and must be cheap and thread-safe; this
module never opens a spool (only the main loop does, so spool lifecycles have one owner).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from yai_spool.daemon.config import SPOOL_SUFFIX, WatchMode

__all__ = ["SpoolWatcher", "is_spool_name", "scan_directory", "spool_for"]

log = logging.getLogger("yai_spool.daemon")

# The WAL is where every append lands; the database file itself changes at checkpoints.
_WRITE_SUFFIXES = (SPOOL_SUFFIX, SPOOL_SUFFIX + "-wal")
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileClosedEvent,
    FileDeletedEvent,
]


def is_spool_name(name: str) -> bool:
    """``app.spool`` yes; ``app.spool-wal``, ``.app.spool``, ``app.spool.corrupt-...`` no."""
    return name.endswith(SPOOL_SUFFIX) and not name.startswith(".") and len(name) > 6


def spool_for(path: str | os.PathLike[str]) -> Path | None:
    """The spool a written file belongs to (``x.spool`` or ``x.spool-wal`` -> ``x.spool``)."""
    p = Path(os.fsdecode(path))
    for suffix in _WRITE_SUFFIXES:
        if p.name.endswith(suffix):
            spool = p.with_name(p.name[: len(p.name) - len(suffix)] + SPOOL_SUFFIX)
            return spool if is_spool_name(spool.name) else None
    return None


def scan_directory(directory: Path) -> list[Path]:
    """Spool files directly in ``directory`` (no recursion, symlinks not followed)."""
    try:
        with os.scandir(directory) as entries:
            return sorted(
                Path(e.path)
                for e in entries
                if is_spool_name(e.name) and e.is_file(follow_symlinks=False)
            )
    except FileNotFoundError:
        return []


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SpoolWatcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        paths = [os.fsdecode(event.src_path)]
        if isinstance(event, FileMovedEvent):
            paths.append(os.fsdecode(event.dest_path))
        for raw in paths:
            spool = spool_for(raw)
            if spool is None:
                continue
            if raw.endswith(SPOOL_SUFFIX):
                # The database file itself: created/moved/deleted changes the set of spools.
                # Its *modifications* are checkpoints (often our own), not appends: ignored,
                # or every checkpoint would wake the flusher that made it.
                if event.event_type in ("created", "moved", "deleted"):
                    self._watcher.dispatch(spool, structural=True, write=True)
            elif event.event_type != "deleted":
                # An append is a WAL write: wake that spool's flusher.
                self._watcher.dispatch(spool, structural=False, write=True)


class SpoolWatcher:
    """One observer thread over a changing set of directories.

    Args:
        mode: inotify, poll or auto.
        poll_interval: the polling observer's period.
        on_write: called with a spool path on every write to it (observer thread).
        on_change: called with a spool path created, moved or deleted (observer thread).
    """

    def __init__(
        self,
        mode: WatchMode,
        poll_interval: float,
        on_write: Callable[[Path], None],
        on_change: Callable[[Path], None],
    ) -> None:
        self.mode = mode
        self._poll_interval = poll_interval
        self._on_write = on_write
        self._on_change = on_change
        self._handler = _Handler(self)
        self._observer: BaseObserver | None = None
        self._watches: dict[Path, ObservedWatch] = {}
        self._lock = threading.Lock()
        self.kind = "none"

    def dispatch(self, spool: Path, *, structural: bool, write: bool) -> None:
        try:
            if structural:
                self._on_change(spool)
            if write:
                self._on_write(spool)
        except Exception:  # never kill the observer thread over one callback
            log.exception("file event handling failed for %s", spool)

    def _new_observer(self, kind: str) -> BaseObserver:
        if kind == "inotify":
            from watchdog.observers.inotify import InotifyObserver  # noqa: PLC0415 - Linux only

            # timeout bounds how long stop() waits for the reader thread.
            return InotifyObserver(timeout=0.2)
        return PollingObserver(timeout=self._poll_interval)

    def start(self, directories: Iterable[Path]) -> None:
        """Start observing ``directories`` (ConfigError-free: failures fall back or log)."""
        dirs = list(directories)
        kinds = {"poll": ["polling"], "inotify": ["inotify"], "auto": ["inotify", "polling"]}
        last_error: Exception | None = None
        for kind in kinds[self.mode.value]:
            observer = self._new_observer(kind)
            try:
                watches = {d: self._schedule(observer, d) for d in dirs if d.is_dir()}
                observer.start()
            except (OSError, ImportError) as exc:
                last_error = exc
                log.warning("cannot watch with %s (%s); trying the next method", kind, exc)
                continue
            self._observer, self._watches, self.kind = observer, watches, kind
            log.info("watching %d directories with %s", len(watches), kind)
            self.set_directories(dirs)  # log the ones that do not exist yet
            return
        raise OSError(f"cannot watch spool directories ({self.mode.value}): {last_error}")

    def _schedule(self, observer: BaseObserver, directory: Path) -> ObservedWatch:
        return observer.schedule(
            self._handler, str(directory), recursive=False, event_filter=_EVENTS
        )

    def set_directories(self, directories: Iterable[Path]) -> None:
        """Watch exactly these directories (missing ones are retried at the next call)."""
        observer = self._observer
        if observer is None:
            return
        wanted = [d for d in directories]
        with self._lock:
            for directory in list(self._watches):
                if directory not in wanted or not directory.is_dir():
                    watch = self._watches.pop(directory)
                    # KeyError/OSError: the watch went away with its directory.
                    with contextlib.suppress(KeyError, OSError):
                        observer.unschedule(watch)
            for directory in wanted:
                if directory in self._watches or not directory.is_dir():
                    continue
                try:
                    self._watches[directory] = self._schedule(observer, directory)
                except OSError as exc:
                    log.warning("cannot watch %s (%s); relying on rescans", directory, exc)

    @property
    def directories(self) -> list[Path]:
        with self._lock:
            return list(self._watches)

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5.0)
