"""The ``yai-spool run`` command: the edge where arguments, environment and stderr meet.

Owns the command-line surface of the daemon and its logging setup. Exit codes: 0 after a
SIGTERM/SIGINT drain, 78 (``EX_CONFIG``) for a configuration or credentials problem found
before ``READY=1`` (the units set ``RestartPreventExitStatus=78``: restarting cannot fix a
typo), 1 when the daemon cannot start for another reason (watch, metrics port).

Invariants: heavy imports (watchdog, httpx) happen only inside ``run`` so other commands stay
fast; every message goes to stderr as one plain line per event (journald adds time and unit;
under journald each line carries its syslog priority as ``<N>``); nothing printed ever holds
a secret.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from yai_spool.daemon.config import ENV_CONFIG, ENV_ENDPOINT, load_daemon_config
from yai_spool.sls.errors import ConfigError

__all__ = ["EX_CONFIG", "configure_logging", "run"]

EX_CONFIG = 78  # sysexits.h: configuration error

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class _JournalFormatter(logging.Formatter):
    """``<6>yai_spool.daemon: message``: journald reads the priority prefix (sd-daemon(3))."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.splitlines())


def _stderr_is_journal() -> bool:
    stream = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = stream.partition(":")
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return dev.isdigit() and ino.isdigit() and (st.st_dev, st.st_ino) == (int(dev), int(ino))


def configure_logging(level: str) -> None:
    """Plain lines on stderr for our loggers (``yai_spool.*``); quiet HTTP libraries."""
    handler = logging.StreamHandler(sys.stderr)
    if _stderr_is_journal():
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)  # third-party libraries: warnings and worse only
    logging.getLogger("yai_spool").setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"yai-spool run: {message}", err=True)
    return typer.Exit(code)


def run(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Spool files or directories (every *.spool in them) to drain, in addition to "
            "the configuration file.",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help=f"TOML configuration file (default: ${ENV_CONFIG}); see "
            "systemd/yai-spool.example.toml.",
            show_default=False,
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help=f"SLS endpoint replacing \\[defaults].endpoint (default: ${ENV_ENDPOINT}).",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Validate the configuration and exit (for ExecReload=)."),
    ] = False,
) -> None:
    """Drain spools to SLS as a systemd service (Type=notify; SIGTERM drains, SIGHUP reloads).

    Credentials come from $CREDENTIALS_DIRECTORY (sls-access-key-id, sls-access-key-secret,
    optional sls-security-token; set with LoadCredential=) or from ALIBABA_CLOUD_ACCESS_KEY_ID /
    ALIBABA_CLOUD_ACCESS_KEY_SECRET / ALIBABA_CLOUD_SECURITY_TOKEN.
    """
    try:
        daemon_config = load_daemon_config(config, paths=paths or (), endpoint=endpoint)
    except ConfigError as exc:
        raise _fail(str(exc), EX_CONFIG) from None
    if check:
        typer.echo(
            f"configuration OK: {len(daemon_config.spools)} spool files, "
            f"{len(daemon_config.directories)} directories, "
            f"drain_timeout={daemon_config.drain_timeout:g}s"
        )
        return

    configure_logging(daemon_config.log_level)
    # Heavy modules load only for the daemon itself.
    from yai_spool.daemon.credentials import daemon_credentials  # noqa: PLC0415
    from yai_spool.daemon.runner import Daemon  # noqa: PLC0415

    try:
        credentials = daemon_credentials()
    except ConfigError as exc:
        raise _fail(str(exc), EX_CONFIG) from None
    daemon = Daemon(
        daemon_config,
        credentials=credentials,
        loader=lambda: load_daemon_config(config, paths=paths or (), endpoint=endpoint),
    )
    try:
        code = daemon.run()
    except Exception:
        # A bug: log it as plain lines (no locals: rich tracebacks could show objects) and
        # exit non-zero so Restart=on-failure brings the daemon back.
        logging.getLogger("yai_spool.daemon").exception("crashed; spooled records are kept")
        code = 1
    if code:
        raise typer.Exit(code)
