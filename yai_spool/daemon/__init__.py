"""``yai-spool run``: the systemd-managed flusher daemon.

Drains one spool, or every ``*.spool`` under configured directories, to SLS; the units live in
``systemd/``. Modules:

- ``command``      the typer command ``run`` (arguments, logging setup, exit codes)
- ``runner``       ``Daemon``: the main loop, one Spool + ThreadFlusher per spool file
- ``discovery``    spool-file scans and the watchdog observer (inotify, polling fallback)
- ``notify``       sd_notify over ``$NOTIFY_SOCKET`` and the watchdog period
- ``signals``      SIGTERM/SIGINT/SIGHUP flags and the loop's wake-up channel
- ``credentials``  ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``) or environment credentials
- ``status``       snapshots and the one-line ``STATUS=`` summary
- ``metrics``      optional Prometheus exporter on 127.0.0.1

Configuration (TOML + environment) lives in ``yai_spool.daemon.config``.

Invariants: importing this package is cheap (only ``command``); the spool's flusher lock is
what keeps two drainers off one spool, never timing.
"""

from yai_spool.daemon.command import run

__all__ = ["run"]
