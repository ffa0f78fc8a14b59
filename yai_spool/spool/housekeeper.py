"""The housekeeper: one background thread per write-mode ``Spool`` that keeps the WAL short.

Owns *when* the spool's upkeep runs, never *what* it does (that is
``Spool._housekeep``): WAL checkpoints, persisting drops counted in memory, the ledger slot
and the appended high-water mark (``ledger``).

Why a thread of its own: producers never checkpoint (``wal_autocheckpoint=0``: a 4 MiB
checkpoint inside ``emit`` put milliseconds into its p99.9), and the flusher cannot be relied
on for it (there may be none in this process, or it may sit in a request or a backoff for a
minute). Records that live only in the WAL are the ones a damaged ``-wal`` file loses, so the
WAL is checkpointed at most ``TICK`` seconds after a write, and sooner (``MIN_GAP``) when
producers say it grew (``wake``, every ``SpoolConfig.refresh_every`` appends). When the disk
is nearly full the spool asks for urgent ticks (``wake(urgent=True)``, no ``MIN_GAP``): a WAL
that fills a small disk before it can restart would leave no room for its own checkpoint.

Invariants:

- Started lazily by the spool (first append, or taking the flusher lock), never in a
  constructor, and restarted in a forked child by the same rule.
- Holds only a weak reference to its spool between ticks: a spool that is garbage-collected
  without ``close()`` stops its housekeeper at the next tick.
- ``stop()`` joins the thread: after ``Spool.close()`` no housekeeper runs.
- A failing tick never ends the thread (the disk may be full; it will be retried).
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from yai_spool.spool.upkeep import SpoolUpkeep

__all__ = ["MIN_GAP", "TICK", "Housekeeper"]

#: Seconds between two ticks when nothing wakes the housekeeper.
TICK: Final = 0.5
#: Shortest interval between two ticks, however often producers wake it.
MIN_GAP: Final = 0.1

_log = logging.getLogger("yai_spool.internal")


class Housekeeper:
    """Runs ``spool._housekeep()`` every ``TICK`` seconds, or soon after ``wake()``."""

    def __init__(self, spool: SpoolUpkeep) -> None:
        self._ref = weakref.ref(spool)
        self._wake = threading.Event()
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"yai-spool-housekeeper[{spool.path.name}]", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def wake(self, *, urgent: bool = False) -> None:
        """Producers: the WAL grew; tick soon (at most every ``MIN_GAP``, unless ``urgent``)."""
        if not self._wake.is_set():
            self._wake.set()
        if urgent and not self._urgent.is_set():
            self._urgent.set()

    def stop(self, timeout: float | None = None) -> None:
        """End the thread and wait for it (a tick in progress finishes first)."""
        self._stop.set()
        self._wake.set()
        self._urgent.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK)
            if self._stop.is_set():
                return
            self._wake.clear()
            self._urgent.clear()
            spool = self._ref()
            if spool is None:
                return
            try:
                if not spool._housekeep():
                    return  # closed
            except Exception:  # the disk may be full: retried at the next tick
                _log.debug("yai-spool housekeeping failed for %s", spool.path, exc_info=True)
            del spool  # no strong reference while waiting
            self._urgent.wait(MIN_GAP)  # an urgent wake (or stop) ends the gap at once
