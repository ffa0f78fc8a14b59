"""sd_notify over real AF_UNIX datagram sockets (path and abstract) and the watchdog period."""

from __future__ import annotations

import os
from pathlib import Path

from daemon_support import NotifyListener

from yai_spool.daemon.notify import Notifier, watchdog_interval


def test_daemon_notify_path_socket(short_dir: Path) -> None:
    listener = NotifyListener(short_dir)
    notifier = Notifier(listener.address)
    try:
        assert notifier.ready("1 spool\nREADY=0")
        message = listener.wait_key("READY")
        assert message is not None
        # A STATUS text can never inject another assignment: it stays one line.
        assert message["STATUS"] == "1 spool READY=0"
        assert message["MAINPID"] == str(os.getpid())
        assert notifier.watchdog()
        assert listener.wait_key("WATCHDOG") is not None
        assert notifier.stopping("bye")
        assert listener.wait_key("STOPPING") is not None
        assert notifier.reloading()
        reload = listener.wait_key("RELOADING")
        assert reload is not None
        assert reload["MONOTONIC_USEC"].isdigit()
    finally:
        notifier.close()
        listener.close()


def test_daemon_notify_abstract_socket() -> None:
    listener = NotifyListener(abstract=True)
    notifier = Notifier(listener.address)
    try:
        assert listener.address.startswith("@")
        assert notifier.status("hello")
        assert listener.wait_for(lambda m: m.get("STATUS") == "hello") is not None
    finally:
        notifier.close()
        listener.close()


def test_daemon_notify_without_socket_or_listener_never_raises(short_dir: Path) -> None:
    assert not Notifier("").enabled
    assert Notifier("").ready("x") is False
    gone = Notifier(str(short_dir / "nobody-listens.sock"))
    assert gone.watchdog() is False  # systemd went away: ignored, not fatal
    gone.close()


def test_daemon_watchdog_interval_from_environment() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": pid}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None
