"""``yai-spool doctor``: a pass/warn/fail checklist of everything a spool needs.

Owns the command and its checks: the daemon's TOML validates; per spool it opens read-only,
passes ``quick_check``, is healthy, has 0600 files in a 0700 directory with one owner and
free disk space; credentials are found where ``yai-spool run`` looks; per
endpoint/project/logstore, the clock skew (the server's Date header) and ONE authenticated
PutLogs carrying zero logs (it writes nothing and needs no read permission).

Invariants: read-only on spools; the clock probe carries no credentials; secrets are never
printed; exit 0 when nothing failed (warnings allowed), 11 otherwise.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer
from rich.markup import escape

from yai_spool.cli.common import (
    CredentialSource,
    JsonOpt,
    SpoolCommand,
    Unavailable,
    config_option,
    config_spools,
    credential_source,
    discover,
    find_config,
    guarded,
    open_readonly,
    out_console,
    print_json,
    size_text,
    spools_argument,
    unacknowledged,
)
from yai_spool.cli.exit_codes import COMMON_EXITS, ExitCode
from yai_spool.ops.health import Verdict, assess
from yai_spool.sls.errors import ConfigError, Outcome, SLSError, TransportError
from yai_spool.spool import SpoolError

if TYPE_CHECKING:
    from yai_spool.daemon.config import DaemonConfig

__all__ = ["DOCTOR", "Check", "CheckStatus", "doctor"]


class CheckStatus(StrEnum):
    """Outcome of one doctor check."""

    PASS = "pass"  # noqa: S105 - a check outcome, not a password
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the doctor's checklist."""

    name: str
    status: CheckStatus
    detail: str


# Doctor thresholds: below _DISK_FAIL free the spool will soon drop records (disk_full); the
# spool's own default bound is 256 MiB, so less than _DISK_WARN free is worth a warning.
_MiB: Final = 1024 * 1024
_DISK_FAIL: Final = 64 * _MiB
_DISK_WARN: Final = 1024 * _MiB
_SKEW_WARN: Final = 60.0
# SLS refuses requests whose date is more than 15 minutes off (sls-protocol.md §6).
_SKEW_FAIL: Final = 900.0


def _check_spool(path: Path) -> list[Check]:
    name = f"spool {path}"
    checks: list[Check] = []
    try:
        spool = open_readonly(path)
    except Unavailable as exc:
        return [Check(f"{name}: opens", CheckStatus.FAIL, exc.message)]
    try:
        stats = spool.stats()
        try:
            problems = spool.quick_check()
        except SpoolError as exc:
            problems = [str(exc)]
    finally:
        spool.close()
    checks.append(Check(f"{name}: opens", CheckStatus.PASS, f"schema {stats.schema_version}"))
    unacked = unacknowledged(stats)
    if problems != ["ok"]:
        checks.append(
            Check(f"{name}: integrity", CheckStatus.FAIL, "quick_check: " + "; ".join(problems[:3]))
        )
    elif unacked:
        moved = ", ".join(str(e.detail.get("moved_to")) for e in unacked)
        checks.append(
            Check(
                f"{name}: integrity",
                CheckStatus.FAIL,
                f"quick_check ok, but a corrupt file was quarantined to {moved}; salvage it, "
                "then delete it to acknowledge",
            )
        )
    else:
        checks.append(Check(f"{name}: integrity", CheckStatus.PASS, "quick_check ok"))
    health = assess(stats, time.time(), unacknowledged=unacked)
    level = {Verdict.OK: CheckStatus.PASS, Verdict.LAGGING: CheckStatus.WARN}.get(
        health.verdict, CheckStatus.FAIL
    )
    checks.append(Check(f"{name}: health", level, f"{health.verdict}: {health.summary}"))
    checks.append(_check_modes(path))
    checks.append(_check_disk(path.parent))
    return checks


def _check_modes(path: Path) -> Check:
    name = f"spool {path}: permissions"
    bad: list[str] = []
    warn: list[str] = []
    owners: dict[int, list[str]] = {}
    try:
        st = os.stat(path.parent)
    except OSError as exc:
        return Check(name, CheckStatus.FAIL, f"cannot stat {path.parent}: {exc.strerror}")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not mode & stat.S_ISVTX:
        bad.append(f"directory {path.parent} is {mode:04o}: others may replace the spool")
    elif mode & 0o077 and not mode & stat.S_ISVTX:
        warn.append(f"directory {path.parent} is {mode:04o} (expected 0700)")
    for suffix in ("", "-wal", "-shm", ".flusher.lock", ".open.lock"):
        file = Path(f"{path}{suffix}")
        try:
            fst = os.stat(file)
        except FileNotFoundError:
            continue
        except OSError as exc:
            bad.append(f"cannot stat {file.name}: {exc.strerror}")
            continue
        owners.setdefault(fst.st_uid, []).append(file.name)
        fmode = stat.S_IMODE(fst.st_mode)
        if fmode & 0o077:
            # The spool repairs modes at its next writable open; logs may hold personal data.
            warn.append(f"{file.name} is {fmode:04o} (expected 0600)")
    if len(owners) > 1:
        listing = "; ".join(f"uid {uid}: {', '.join(names)}" for uid, names in owners.items())
        bad.append(f"files have different owners ({listing}); the service must own them all")
    if bad:
        return Check(name, CheckStatus.FAIL, "; ".join(bad + warn))
    if warn:
        return Check(name, CheckStatus.WARN, "; ".join(warn))
    uid = next(iter(owners), st.st_uid)
    return Check(name, CheckStatus.PASS, f"0600 files, {mode:04o} directory, owner uid {uid}")


def _check_disk(directory: Path) -> Check:
    name = f"disk space at {directory}"
    try:
        usage = shutil.disk_usage(directory)
    except OSError as exc:
        return Check(name, CheckStatus.FAIL, f"cannot read: {exc.strerror}")
    free = usage.free
    share = free / usage.total if usage.total else 0.0
    detail = f"{size_text(free)} free of {size_text(usage.total)} ({share:.0%})"
    if free < _DISK_FAIL:
        return Check(name, CheckStatus.FAIL, detail + "; appends will soon fail (disk_full)")
    if free < _DISK_WARN or share < 0.1:
        return Check(name, CheckStatus.WARN, detail)
    return Check(name, CheckStatus.PASS, detail)


def _server_clock(endpoint: str, project: str, logstore: str) -> tuple[float, float] | None:
    """(server Date, local midpoint) from one unauthenticated GET of the endpoint's root.

    PutLogsClient does not expose response headers yet (requested), so the clock is read from
    a separate request that carries no credentials; any answer (404/401) has a Date header.
    """
    from email.utils import parsedate_to_datetime  # noqa: PLC0415 - only doctor needs these

    import httpx  # noqa: PLC0415

    from yai_spool.sls.request import Destination, Endpoint  # noqa: PLC0415

    dest = Destination(Endpoint.parse(endpoint), project, logstore)
    sent = time.time()
    try:
        with httpx.Client(trust_env=False, timeout=10.0, follow_redirects=False) as client:
            response = client.get(dest.base_url + "/", headers={"Host": dest.host_header})
    except httpx.HTTPError as exc:  # the request carries no credentials: its text is safe
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
    got = time.time()
    date = response.headers.get("date")
    if not date:
        return None
    return parsedate_to_datetime(date).timestamp(), (sent + got) / 2


def _check_endpoint(
    endpoint: str, project: str, logstore: str, source: CredentialSource | None
) -> list[Check]:
    from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415 - only doctor/replay send
    from yai_spool.sls.model import LogGroup  # noqa: PLC0415

    checks: list[Check] = []
    try:
        clock = _server_clock(endpoint, project, logstore)
    except (ConfigError, OSError) as exc:
        clock = None
        checks.append(Check("clock skew", CheckStatus.FAIL, f"cannot reach {endpoint}: {exc}"))
    else:
        if clock is None:
            checks.append(Check("clock skew", CheckStatus.WARN, "the server sent no Date header"))
        else:
            skew = clock[1] - clock[0]
            detail = f"local clock {skew:+.1f}s vs {endpoint} (Date header, 1 s resolution)"
            level = (
                CheckStatus.FAIL
                if abs(skew) >= _SKEW_FAIL
                else CheckStatus.WARN
                if abs(skew) >= _SKEW_WARN
                else CheckStatus.PASS
            )
            if level is CheckStatus.FAIL:
                detail += "; SLS refuses requests more than 15 min off: fix NTP"
            checks.append(Check("clock skew", level, detail))
    if source is None:
        checks.append(Check("credentials valid", CheckStatus.SKIP, "no credentials to try"))
        return checks
    # The probe: PutLogs with ZERO logs. It is authenticated like any PutLogs, writes nothing,
    # and needs no read permission (GetLogStore would need one a write-only key may lack).
    try:
        with PutLogsClient(endpoint, credentials_provider=source.provider) as client:
            result = client.put_logs(project, logstore, LogGroup(logs=()))
    except SLSError as exc:
        outcome = exc.outcome
        where = f"{project}/{logstore} at {endpoint}"
        if outcome is Outcome.REJECTED:
            # Identity and destination are checked before the body: only the empty probe body
            # was refused, so the credentials work.
            checks.append(
                Check(
                    "credentials valid",
                    CheckStatus.PASS,
                    f"{where} accepted the identity ({exc.error_code} for the empty probe)",
                )
            )
        else:
            checks.append(
                Check(
                    "credentials valid",
                    CheckStatus.FAIL,
                    f"{where}: {exc.error_code}: {exc.message} (request id "
                    f"{exc.request_id or '-'}; {outcome.value})",
                )
            )
    except TransportError as exc:
        checks.append(Check("credentials valid", CheckStatus.FAIL, f"no answer: {exc}"))
    except ConfigError as exc:
        checks.append(Check("credentials valid", CheckStatus.FAIL, str(exc)))
    else:
        checks.append(
            Check(
                "credentials valid",
                CheckStatus.PASS,
                f"PutLogs probe (0 logs) to {project}/{logstore} answered 200 "
                f"(request id {result.request_id})",
            )
        )
    return checks


def _config_probes(config: DaemonConfig) -> list[tuple[str, str, str]]:
    """Distinct (endpoint, project, logstore) the configuration names in full."""
    probes: dict[tuple[str, str, str], None] = {}
    for source in (*config.spools, *config.directories):
        dest = source.destination
        if dest.endpoint and dest.project and dest.logstore:
            probes.setdefault((dest.endpoint, dest.project, dest.logstore))
    return list(probes)


_SPOOLS_HELP = (
    "Spool files or directories (default: the config's, else the handler's default spool "
    "directory)."
)
_CONFIG_HELP = (
    "The daemon's TOML config to validate (default: $YAI_SPOOL_CONFIG); its spools and "
    "destinations are checked when no SPOOL / --endpoint is given."
)


@guarded
def doctor(  # keyword-only: typer passes every parameter by name
    *,
    spools: Annotated[list[Path] | None, spools_argument(_SPOOLS_HELP)] = None,
    config: Annotated[Path | None, config_option(_CONFIG_HELP)] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(help="SLS endpoint to probe (clock skew, credentials)."),
    ] = None,
    project: Annotated[str | None, typer.Option(help="Project for the credentials probe.")] = None,
    logstore: Annotated[
        str | None, typer.Option(help="Logstore for the credentials probe.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check everything a spool needs and print a pass/warn/fail checklist.

    Config: the daemon's TOML validates. Spools: opens read-only, quick_check, health, file
    modes (0600) and directory (0700), one owner, free disk space. Credentials: found where
    'yai-spool run' looks ($CREDENTIALS_DIRECTORY files sls-access-key-id /
    sls-access-key-secret / sls-security-token, else ALIBABA_CLOUD_ACCESS_KEY_ID /
    _SECRET / ALIBABA_CLOUD_SECURITY_TOKEN). Per endpoint/project/logstore (options or
    config): clock skew from the server's Date header and ONE authenticated PutLogs carrying
    zero logs (writes nothing). Secrets are never printed. Exit 0 when nothing failed
    (warnings allowed), 11 otherwise.
    """
    checks: list[Check] = []
    loaded: DaemonConfig | None = None
    try:
        loaded = find_config(config)
    except ConfigError as exc:
        checks.append(Check(f"config {config or '$YAI_SPOOL_CONFIG'}", CheckStatus.FAIL, str(exc)))
    else:
        if loaded is not None:
            checks.append(
                Check(
                    f"config {loaded.source_file}",
                    CheckStatus.PASS,
                    f"valid: {len(loaded.spools)} spool(s), {len(loaded.directories)} "
                    "director(y/ies)",
                )
            )
    paths = list(spools or []) or (config_spools(loaded) if loaded is not None else [])
    for path, problem in discover(paths):
        if problem is not None:
            checks.append(Check(f"spool {path}: opens", CheckStatus.FAIL, problem.message))
        else:
            checks.extend(_check_spool(path))
    source: CredentialSource | None = None
    try:
        source = credential_source()
    except ConfigError as exc:
        checks.append(Check("credentials present", CheckStatus.FAIL, str(exc)))
    else:
        checks.append(Check("credentials present", CheckStatus.PASS, source.where))
    if endpoint is not None:
        if project and logstore:
            checks.extend(_check_endpoint(endpoint, project, logstore, source))
        else:
            checks.append(
                Check("endpoint", CheckStatus.FAIL, "--endpoint needs --project and --logstore")
            )
    elif loaded is not None and _config_probes(loaded):
        for probe in _config_probes(loaded):
            checks.extend(_check_endpoint(*probe, source))
    else:
        checks.append(
            Check(
                "endpoint",
                CheckStatus.SKIP,
                "pass --endpoint --project --logstore (or a --config naming them) to probe",
            )
        )
    counts = Counter(c.status for c in checks)
    failed = counts[CheckStatus.FAIL]
    code = ExitCode.CHECKS_FAILED if failed else ExitCode.OK
    headline = (
        f"doctor: {failed} failed, {counts[CheckStatus.WARN]} warning(s), "
        f"{counts[CheckStatus.PASS]} passed"
        + (f", {counts[CheckStatus.SKIP]} skipped" if counts[CheckStatus.SKIP] else "")
    )
    if failed:
        first = next(c for c in checks if c.status is CheckStatus.FAIL)
        # One line, whatever the detail holds (a ConfigError lists one problem per line).
        headline = f"FAIL: {first.name}: {' '.join(first.detail.split())} ({headline})"
    if as_json:
        print_json(
            {
                "ok": not failed,
                "exit_code": int(code),
                "summary": headline,
                "counts": {s.value: counts[s] for s in CheckStatus},
                "checks": [
                    {"name": c.name, "status": c.status.value, "detail": c.detail} for c in checks
                ],
            }
        )
        raise typer.Exit(code)
    console = out_console()
    console.print(escape(headline), soft_wrap=True)
    styles = {
        CheckStatus.PASS: "green",
        CheckStatus.WARN: "yellow",
        CheckStatus.FAIL: "red",
        CheckStatus.SKIP: "dim",
    }
    for c in checks:
        console.print(
            f"[{styles[c.status]}]{c.status.value.upper():4}[/] {escape(c.name)}: "
            f"{escape(c.detail)}",
            soft_wrap=True,
        )
    raise typer.Exit(code)


DOCTOR = SpoolCommand("doctor", doctor, (*COMMON_EXITS, ExitCode.CHECKS_FAILED))
