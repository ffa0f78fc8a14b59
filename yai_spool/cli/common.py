"""What every spool command shares: opening spools, finding them, rendering, failing.

Owns the ``guarded`` wrapper (expected failures -> one line on stderr and a documented exit
code, :mod:`yai_spool.cli.exit_codes`), the consoles and JSON printer, duration/time parsing,
opening a spool read-only or writable, path discovery (files, ``*.spool`` in directories, the
daemon config's spools), acknowledged-event bookkeeping, the daemon's credential source, the
progress bar, the arguments/options several commands take, and :class:`SpoolCommand` (one
command with its ``--help`` text and exit-code epilog).

Invariants:

- Opening never creates a spool: a missing file is :data:`Verdict.MISSING`, an unreadable one
  :data:`Verdict.PERMISSION_DENIED`, told apart before SQLite turns both into "unable to open".
- ``open_writable`` refuses root on a spool another user owns (files it creates would lock the
  service out); readers use ``Spool.open_readonly`` only.
- Nothing here prints a secret: credentials travel as providers, only the masked access key id
  (``LTAI****``) is ever shown.
- ``print_json`` writes exactly one JSON document (or line) to stdout; consoles for prompts,
  progress and warnings write to stderr.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from yai_spool.cli.exit_codes import EXIT_CODES, VERDICT_EXIT, ExitCode
from yai_spool.ops.health import LOSS_ACK_WINDOW, QUARANTINE_EVENT, Verdict, quarantine_events
from yai_spool.sls.credentials import CredentialsProvider, mask_key_id
from yai_spool.sls.errors import YaiSpoolError
from yai_spool.spool import (
    Spool,
    SpoolCorruptError,
    SpoolError,
    SpoolEvent,
    SpoolPermissionError,
    SpoolSchemaError,
    SpoolStats,
    SpoolStorageError,
)

if TYPE_CHECKING:
    from yai_spool.daemon.config import DaemonConfig

__all__ = [
    "CredentialSource",
    "JsonOpt",
    "SpoolArg",
    "SpoolCommand",
    "Stop",
    "Unavailable",
    "check_writable",
    "config_option",
    "config_spools",
    "credential_source",
    "discover",
    "err_console",
    "find_config",
    "guarded",
    "iso_time",
    "open_error",
    "open_readonly",
    "open_writable",
    "out_console",
    "parse_duration",
    "parse_when",
    "print_json",
    "progress_bar",
    "size_text",
    "spools_argument",
    "unacknowledged",
]


# ------------------------------------------------------------------------------ failures


class Unavailable(Exception):
    """A spool that cannot be used, with the verdict that says why."""

    def __init__(self, verdict: Verdict, message: str) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.message = message


class Stop(Exception):
    """End a command with ``code`` after printing ``message`` to stderr."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_P = ParamSpec("_P")
_R = TypeVar("_R")


def guarded(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn expected failures into a one-line message on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except Unavailable as exc:
            err_console().print(f"yai-spool: {exc.verdict}: {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(VERDICT_EXIT[exc.verdict]) from None
        except Stop as exc:
            err_console().print(f"yai-spool: {escape(exc.message)}", soft_wrap=True)
            raise typer.Exit(exc.code) from None
        except BrokenPipeError:
            # 'peek --json | head': the reader is gone, which is not an error. Point stdout at
            # /dev/null so the interpreter's final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(ExitCode.OK) from None
        except (SpoolError, YaiSpoolError, OSError) as exc:
            # Messages of our exceptions never hold a secret (errors.py / spool invariants).
            err_console().print(f"yai-spool: error: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(ExitCode.ERROR) from None

    return wrapper


def out_console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")


# ------------------------------------------------------------------------------ parsing

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]?))", re.IGNORECASE)
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d``, ``1h30m`` -> seconds.

    Raises:
        typer.BadParameter: anything else.
    """
    value = text.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(value):
        if match.start() != pos or not match.group(0):
            break
        total += float(match.group(1)) * _UNITS[match.group(2).lower()]
        pos = match.end()
    if not value or pos != len(value):
        raise typer.BadParameter(f"{text!r} is not a duration (examples: 90, 45s, 10m, 2h, 1d)")
    return total


def parse_when(text: str, now: float) -> float:
    """An ISO 8601 time (naive = local time) or a relative age (``10m`` = 10 minutes ago).

    Raises:
        typer.BadParameter: neither.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return now - parse_duration(value)
    except typer.BadParameter:
        pass
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO time (2026-11-28T10:00:00, +08:00 or Z) nor an age "
            "(10m, 2h, 1d)"
        ) from None
    if when.tzinfo is None:
        when = when.astimezone()  # naive: the operator's local time
    return when.timestamp()


def iso_time(ts: float | None) -> str:
    if ts is None or not math.isfinite(ts):
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


# ------------------------------------------------------------------------------ opening


def check_file(path: Path) -> None:
    """Tell missing from permission denied before SQLite turns both into 'unable to open'."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Unavailable(
            Verdict.MISSING, f"no spool at {path} (no such file or directory)"
        ) from None
    except NotADirectoryError:
        raise Unavailable(
            Verdict.MISSING, f"no spool at {path} (a parent of it is a file, not a directory)"
        ) from None
    except PermissionError:
        raise Unavailable(
            Verdict.PERMISSION_DENIED,
            f"cannot reach {path}: permission denied on a parent directory; run as the "
            "service's user (or with sudo)",
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise Unavailable(Verdict.MISSING, f"{path} is a directory, not a spool file")
    if not os.access(path, os.R_OK):
        raise Unavailable(
            Verdict.PERMISSION_DENIED,
            f"cannot read {path}: permission denied (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):04o}); run as the service's user (or with sudo)",
        )


def open_error(path: Path, exc: SpoolError) -> Unavailable:
    """The verdict an open failure implies; re-raises ``exc`` when it implies none."""
    if isinstance(exc, SpoolCorruptError | SpoolSchemaError):
        return Unavailable(Verdict.CORRUPT, f"{path} cannot be read as a spool: {exc}")
    if isinstance(exc, SpoolPermissionError) or (
        isinstance(exc, SpoolStorageError) and exc.reason == "permission"
    ):
        return Unavailable(
            Verdict.PERMISSION_DENIED,
            f"cannot open {path}: {exc}; the spool needs read access to the file and its "
            "directory (SQLite's -wal/-shm files live there)",
        )
    # Anything else (busy beyond the busy timeout, an I/O error) says nothing about the file
    # itself: it stays an error (exit 1) with SQLite's words, not a verdict.
    raise exc


def open_readonly(path: Path) -> Spool:
    check_file(path)
    try:
        return Spool.open_readonly(path)
    except SpoolError as exc:
        raise open_error(path, exc) from exc


def check_writable(path: Path) -> None:
    """Refuse root on a spool owned by another user, before anything is asked or changed.

    Lock files this process might create would belong to root (0600) and lock the service out
    of its own spool.
    """
    check_file(path)
    owner = os.stat(path).st_uid
    if os.geteuid() == 0 and owner != 0:
        raise Stop(
            ExitCode.REFUSED,
            f"{path} belongs to uid {owner}; run this command as that user "
            f"(sudo -u '#{owner}' yai-spool ...) so every file it touches stays theirs",
        )


def open_writable(path: Path) -> Spool:
    """For replay/purge/vacuum: a missing file is an error here, never a new empty spool."""
    check_writable(path)
    try:
        return Spool(path)
    except SpoolError as exc:
        raise open_error(path, exc) from exc


def _default_spool_dir() -> Path:
    # Imported here: handler pulls in the flusher and the HTTP client, which status never needs.
    from yai_spool.handlers.durable import default_spool_path  # noqa: PLC0415

    return default_spool_path("project", "logstore").parent


def discover(paths: Sequence[Path]) -> list[tuple[Path, Unavailable | None]]:
    """Spool files named, or found as ``*.spool`` in named directories (default: the handler's)."""
    out: list[tuple[Path, Unavailable | None]] = []
    for given in paths or [_default_spool_dir()]:
        path = Path(os.path.abspath(given))
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except OSError:
            is_dir = False  # check_file tells missing from permission denied
        if not is_dir:
            out.append((path, None))
            continue
        try:
            # os.scandir, not Path.glob: glob hides an unreadable directory as an empty one.
            with os.scandir(path) as entries:
                found = sorted(
                    path / e.name for e in entries if e.name.endswith(".spool") and e.is_file()
                )
        except PermissionError:
            out.append(
                (
                    path,
                    Unavailable(
                        Verdict.PERMISSION_DENIED, f"cannot list {path}: permission denied"
                    ),
                )
            )
            continue
        if not found:
            out.append((path, Unavailable(Verdict.MISSING, f"no *.spool file in {path}")))
        out.extend((p, None) for p in found)
    return out


def unacknowledged(stats: SpoolStats, now: float | None = None) -> list[SpoolEvent]:
    """Quarantine / data-loss events not acknowledged yet.

    Deleting (or moving) the file the event left acknowledges it: the quarantined spool, or
    the saved copy of a damaged WAL. A loss event that could not save a copy (a full disk)
    stays unacknowledged for ``LOSS_ACK_WINDOW``.
    """
    now = time.time() if now is None else now
    out = []
    for event in quarantine_events(stats):
        if event.kind == QUARANTINE_EVENT:
            moved = event.detail.get("moved_to")
            if not isinstance(moved, str) or os.path.lexists(moved):
                out.append(event)
            continue
        saved = event.detail.get("saved_to")
        if isinstance(saved, str):
            if os.path.lexists(saved):
                out.append(event)
        elif now - event.at < LOSS_ACK_WINDOW:
            out.append(event)
    return out


# ------------------------------------------------------------------------------ options

SpoolArg = Annotated[
    Path, typer.Argument(metavar="SPOOL", help="The spool file.", show_default=False)
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def spools_argument(help_text: str) -> Any:
    """The optional ``SPOOL...`` of ``status``/``doctor``: files, or directories of ``*.spool``."""
    return typer.Argument(help=help_text, show_default=False)


def config_option(help_text: str) -> Any:
    """``--config FILE``: the daemon's TOML, whose spools count when no SPOOL is given."""
    return typer.Option("--config", help=help_text)


def progress_bar() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        transient=False,
    )


# ------------------------------------------------------------------------------ credentials


@dataclass(frozen=True, slots=True)
class CredentialSource:
    provider: CredentialsProvider
    where: str  # e.g. "environment (ALIBABA_CLOUD_ACCESS_KEY_ID=LTAI****)"; never a secret


def credential_source() -> CredentialSource:
    """The daemon's credentials: ``$CREDENTIALS_DIRECTORY`` files, else the environment.

    The same convention as ``yai-spool run`` (``yai_spool.daemon.credentials``), so what the CLI
    sends with (and what doctor checks) is what the service would use.

    Raises:
        ConfigError: none usable (names what to set, never a value).
    """
    # Imported here: only the commands that send need it (it loads the daemon package).
    from yai_spool.daemon.credentials import (  # noqa: PLC0415
        CredentialsDirectoryProvider,
        daemon_credentials,
    )

    provider = daemon_credentials()
    credentials = provider.get_credentials()
    if isinstance(provider, CredentialsDirectoryProvider):
        origin = f"$CREDENTIALS_DIRECTORY {provider.directory}"
    else:
        origin = "environment"
    token = " + security token" if credentials.security_token else ""
    return CredentialSource(
        provider, f"{origin} (key {mask_key_id(credentials.access_key_id)}{token})"
    )


def find_config(path: Path | None) -> DaemonConfig | None:
    """The daemon's configuration: ``--config``, else ``$YAI_SPOOL_CONFIG``; None for neither.

    Raises:
        ConfigError: unreadable or invalid (every problem named, never a secret: the file
            holds no credentials by design).
    """
    from yai_spool.daemon.config import ENV_CONFIG, load_daemon_config  # noqa: PLC0415

    if path is None and not os.environ.get(ENV_CONFIG):
        return None
    return load_daemon_config(path)


def config_spools(config: DaemonConfig) -> list[Path]:
    """The spool files and directories a configuration drains."""
    return [source.path for source in (*config.spools, *config.directories)]


def _help_text(doc: str | None) -> str:
    """A docstring as typer's rich help wants it: one line per paragraph, markup escaped."""
    paragraphs = inspect.cleandoc(doc or "").split("\n\n")
    return "\n\n".join(escape(" ".join(p.split())) for p in paragraphs)


@dataclass(frozen=True, slots=True)
class SpoolCommand:
    """One spool command: its name, its function and the exit codes its ``--help`` lists."""

    name: str
    function: Callable[..., None]
    exits: tuple[ExitCode, ...]

    def register(self, app: typer.Typer) -> None:
        """Add the command to ``app``, its docstring as help and its exit codes as epilog."""
        meanings = dict(EXIT_CODES)
        lines = [f"{int(code):>2}  {meanings[code]}" for code in self.exits]
        epilog = "\n".join(["Exit codes:", *lines])
        help_text = _help_text(self.function.__doc__)
        app.command(self.name, help=help_text, epilog=epilog)(self.function)
