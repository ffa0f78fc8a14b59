"""Signals and wake-ups of the daemon's main loop.

Owns: SIGTERM/SIGINT (stop), SIGHUP (reload), and the one blocking wait of the main loop.

Invariants:

- Signal handlers only set flags; all work (draining, reloading) happens in the main loop.
- No wake-up is lost: ``signal.set_wakeup_fd`` makes the C-level handler write a byte into a
  socket pair the loop ``select``s on, so a signal that arrives just before the loop starts
  waiting still wakes it (a flag checked before ``time.sleep`` would race). Other threads
  (the watchdog observer) wake the loop through the same pair with :meth:`Wakeup.wake`.
- ``restore()`` puts back the previous handlers and wake-up fd, so the daemon can run
  in-process (tests) without leaving state behind.
"""

from __future__ import annotations

import contextlib
import select
import signal
import socket
import threading
from types import FrameType
from typing import Any

__all__ = ["Wakeup"]


class Wakeup:
    """Flags set by signals and other threads, and the wait that notices them."""

    def __init__(self) -> None:
        self.stop_signal: int | None = None  # SIGTERM or SIGINT once received
        self.reload_requested = False
        self.rescan_requested = False
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)
        self._previous: dict[int, Any] = {}
        self._previous_fd: int | None = None

    # -- installation (main thread only) ---------------------------------------------------

    def install(self) -> None:
        """Take over SIGTERM, SIGINT and SIGHUP (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return  # in-process use from a test thread: flags are set by calling methods
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._previous[signum] = signal.signal(signum, self._on_signal)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._previous_fd = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only flags: the wake-up byte was already written by the C-level handler.
        if signum == signal.SIGHUP:
            self.reload_requested = True
        elif self.stop_signal is None:
            self.stop_signal = signum

    # -- any thread ------------------------------------------------------------------------

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        self.wake()

    def request_reload(self) -> None:
        self.reload_requested = True
        self.wake()

    def request_rescan(self) -> None:
        self.rescan_requested = True
        self.wake()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full buffer = already awake
            self._writer.send(b"\0")

    # -- main loop -------------------------------------------------------------------------

    def wait(self, timeout: float) -> None:
        """Block until a signal/wake-up or ``timeout`` seconds; drains pending wake-ups."""
        readable, _, _ = select.select([self._reader], [], [], max(timeout, 0.0))
        if readable:
            with contextlib.suppress(BlockingIOError, OSError):
                while self._reader.recv(4096):
                    pass

    def close(self) -> None:
        self.restore()
        self._reader.close()
        self._writer.close()
