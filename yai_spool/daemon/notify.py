"""sd_notify: tell systemd we are ready, what we are doing, that we are alive, and stopping.

Owns the datagram protocol of ``$NOTIFY_SOCKET`` (``sd_notify(3)``): newline-separated
``KEY=VALUE`` assignments in one ``AF_UNIX``/``SOCK_DGRAM`` datagram; a path starting with
``@`` names a Linux abstract socket (leading NUL byte). Also the watchdog contract:
``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``, which must be our pid if set) gives the period, and
``WATCHDOG=1`` is sent every half period.

Why our own ~40 lines instead of a PyPI package: ``systemd-python``/``cysystemd`` are C
extensions that need libsystemd headers to build, and the pure-Python ``sdnotify`` package is
unmaintained and has no abstract-socket support. The protocol is one ``sendto``.

Invariants: sending never raises (a service must not die because systemd went away during
shutdown) and never blocks (non-blocking datagram); values are single lines, so a STATUS text
can never inject another assignment such as ``READY=1``; without ``$NOTIFY_SOCKET`` every call
is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog_interval"]

log = logging.getLogger("yai_spool.daemon")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``), or None if disabled."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None  # the watchdog is meant for another process (e.g. our parent)
    return int(usec) / 1e6 / 2


class Notifier:
    """A connectionless sender to ``$NOTIFY_SOCKET`` (no-op when unset)."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if self.address:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            sock.setblocking(False)
            self._sock = sock

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; True if it was handed to the kernel."""
        if self._sock is None:
            return False
        lines = [f"{key}={' '.join(str(value).split())}" for key, value in fields.items()]
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        try:
            self._sock.sendto("\n".join(lines).encode(), target)
        except OSError as exc:
            log.debug("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(READY="1", STATUS=status, MAINPID=str(os.getpid()))

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG="1")

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match this to its SIGHUP.
        return self.notify(RELOADING="1", MONOTONIC_USEC=str(time.monotonic_ns() // 1000))

    def stopping(self, status: str) -> bool:
        return self.notify(STOPPING="1", STATUS=status)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
