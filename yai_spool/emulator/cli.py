"""The ``yai-spool emulator`` commands: serve, dump, count, requests, fault, stats.

Owns: command-line parsing for the emulator and the text/JSON renderings of what it
stored. ``yai_spool/cli.py`` only registers ``emulator_app`` under the name ``emulator``;
``python -m yai_spool.emulator`` runs ``serve`` directly (``serve_app``).

Invariants:
- Nothing printed contains an access key secret or an STS token: ``serve`` echoes key ids
  only, and option errors name the option, never its value.
- ``dump``/``count``/``requests`` open the database read-only, so they are safe while a
  server is writing it (WAL).
- ``fault``/``stats`` talk to a running emulator over its control endpoint
  (``/_emulator/``) with the standard library only (no proxy: the emulator is local).
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from yai_spool.emulator.config import DEFAULT_KEY_PATTERN, EmulatorConfig
from yai_spool.emulator.emulator import CONTROL_PREFIX, serve
from yai_spool.emulator.store import EmulatorStore, StoredLog

__all__ = ["command_group", "emulator_app", "serve_app"]


def command_group(name: str, summary: str) -> typer.Typer:
    """A command group as every yai-spool group is built: bare, it prints its help; it has
    no shell-completion options. (The top-level ``yai-spool`` app is built here too: it
    already imports this module, while this module must not import ``yai_spool.cli``.)"""
    return typer.Typer(name=name, help=summary, no_args_is_help=True, add_completion=False)


emulator_app = command_group(
    "emulator", "Local SLS PutLogs emulator: run it, read what it stored, inject faults."
)

DbOption = Annotated[str, typer.Option("--db", help="SQLite file written by 'serve --db'.")]
UrlOption = Annotated[
    str, typer.Option("--url", help="Emulator URL printed by 'serve', e.g. http://127.0.0.1:8080")
]


def _pairs(values: list[str], option: str, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        left, sep, right = value.partition(":")
        if not sep or not left or not right:
            # Never echo the value: it holds a secret or a token.
            raise typer.BadParameter(f"expected {what}", param_hint=option)
        out[left] = right
    return out


def _projects(values: list[str]) -> dict[str, frozenset[str]] | None:
    if not values:
        return None
    out: dict[str, frozenset[str]] = {}
    for value in values:
        project, _, logstores = value.partition(":")
        out[project] = frozenset(ls for ls in logstores.split(",") if ls)
    return out


def serve_command(  # keyword-only: typer passes every parameter by name
    *,
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 0,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    db: Annotated[
        str | None, typer.Option("--db", help="SQLite file to store into (default: memory).")
    ] = None,
    access_key: Annotated[
        list[str],
        typer.Option(
            "--access-key",
            envvar="YAI_SPOOL_EMULATOR_ACCESS_KEYS",
            help="ID:SECRET, repeatable (env: space-separated list).",
        ),
    ] = [],  # noqa: B006 - typer reads list defaults; never mutated
    sts_token: Annotated[
        list[str],
        typer.Option(
            "--sts-token",
            envvar="YAI_SPOOL_EMULATOR_STS_TOKENS",
            help="TOKEN:ACCESS_KEY_ID, repeatable; that key id then requires the token.",
        ),
    ] = [],  # noqa: B006
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Verify signatures and key ids.")
    ] = True,
    project: Annotated[
        list[str],
        typer.Option(
            "--project",
            help="PROJECT[:LS1,LS2] that exists; repeatable. Default: every project exists.",
        ),
    ] = [],  # noqa: B006
    max_skew: Annotated[float, typer.Option(help="Allowed request clock skew, seconds.")] = 900,
    skew_code: Annotated[
        str, typer.Option(help="RequestTimeExpired or RequestTimeTooSkewed.")
    ] = "RequestTimeExpired",
    max_logs: Annotated[int, typer.Option(help="Logs allowed per request.")] = 40_960,
    max_body_bytes: Annotated[int, typer.Option(help="Largest raw (uncompressed) body.")] = 10
    * 1024
    * 1024,
    any_key: Annotated[
        bool, typer.Option("--any-key", help="Accept content keys off the documented pattern.")
    ] = False,
    missing_content_type: Annotated[
        str,
        typer.Option(help="A body without Content-Type: reject (MissingContentType) or accept."),
    ] = "reject",
    gzip: Annotated[
        str, typer.Option(help="x-log-compresstype gzip: zlib (the gateways' bytes) or reject.")
    ] = "zlib",
    meta_headers: Annotated[
        str, typer.Option(help="x-log-meta-* in V1 signatures: either, unsigned or signed.")
    ] = "either",
    idle_timeout: Annotated[
        float | None, typer.Option(help="Exit after this many seconds without a request.")
    ] = None,
    max_lifetime: Annotated[
        float | None, typer.Option(help="Exit after this many seconds in any case.")
    ] = None,
) -> None:
    """Run an emulator in the foreground; the first stdout line holds its URL."""
    try:
        config = EmulatorConfig(
            host=host,
            port=port,
            db_path=db,
            access_keys=_pairs(access_key, "--access-key", "ID:SECRET"),
            sts_tokens=_pairs(sts_token, "--sts-token", "TOKEN:ACCESS_KEY_ID"),
            verify_signatures=verify,
            projects=_projects(project),
            max_skew_seconds=max_skew,
            skew_error_code=skew_code,
            max_logs_per_request=max_logs,
            max_body_bytes=max_body_bytes,
            key_pattern=None if any_key else DEFAULT_KEY_PATTERN,
            missing_content_type=missing_content_type,  # type: ignore[arg-type]  # validated
            gzip_compress_type=gzip,  # type: ignore[arg-type]
            v1_meta_headers=meta_headers,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    raise typer.Exit(serve(config, idle_timeout=idle_timeout, max_lifetime=max_lifetime))


emulator_app.command("serve")(serve_command)

# `python -m yai_spool.emulator ...`: a one-command app, so no "serve" word is needed.
serve_app = typer.Typer(add_completion=False)
serve_app.command()(serve_command)


def _open(db: str) -> EmulatorStore:
    try:
        return EmulatorStore(db, read_only=True)
    except FileNotFoundError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _value_json(value: bytes) -> str | dict[str, str]:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode("ascii")}


def _log_json(log: StoredLog) -> dict[str, Any]:
    return {
        "time": log.time,
        "time_ns": log.time_ns,
        "topic": log.topic,
        "source": log.source,
        "tags": [list(t) for t in log.tags],
        "contents": [[k, _value_json(v)] for k, v in log.contents],
        "request_id": log.request_id,
    }


def _log_text(log: StoredLog) -> str:
    when = datetime.fromtimestamp(log.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [when, f"[{log.request_id}]"]
    if log.topic:
        parts.append(f"__topic__={log.topic}")
    if log.source:
        parts.append(f"__source__={log.source}")
    parts.extend(f"__tag__:{k}={v}" for k, v in log.tags)
    parts.extend(f"{k}={_printable(v)}" for k, v in log.contents)
    return " ".join(parts)


# Control characters would break the one-log-per-line text format (and a terminal).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def _printable(value: bytes) -> str:
    """UTF-8 text with undecodable bytes and control characters as ``\\xNN``."""
    return value.decode("utf-8", "backslashreplace").translate(_CONTROL)


@emulator_app.command("dump")
def dump_command(
    db: DbOption,
    project: Annotated[str, typer.Option(help="Project name.")],
    logstore: Annotated[str, typer.Option(help="Logstore name.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line; non-UTF-8 as base64.")
    ] = False,
) -> None:
    """Print every stored log of one project/logstore, in arrival order."""
    store = _open(db)
    try:
        for log in store.logs(project, logstore):
            typer.echo(json.dumps(_log_json(log)) if as_json else _log_text(log))
    finally:
        store.close()


@emulator_app.command("count")
def count_command(
    db: DbOption,
    project: Annotated[str | None, typer.Option(help="Project name.")] = None,
    logstore: Annotated[str | None, typer.Option(help="Logstore name.")] = None,
) -> None:
    """Print the number of stored logs (of one destination, or per destination)."""
    store = _open(db)
    try:
        if project is not None and logstore is not None:
            typer.echo(store.count(project, logstore))
            return
        for p, ls, requests, logs in store.destinations():
            if project is None or p == project:
                typer.echo(f"{p}\t{ls}\t{requests} requests\t{logs} logs")
    finally:
        store.close()


@emulator_app.command("requests")
def requests_command(
    db: DbOption,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the request summaries (status, error code, compression, user agent, auth)."""
    store = _open(db)
    try:
        for summary in store.requests():
            if as_json:
                typer.echo(json.dumps(summary.to_json()))
            else:
                typer.echo(
                    f"{summary.request_id} {summary.method} {summary.project}/{summary.logstore}"
                    f" {summary.status or '-'} {summary.error_code or '-'} {summary.outcome}"
                    f" compress={summary.compress_type or 'none'}"
                    f" auth={summary.auth_version or '-'} logs={summary.log_count}"
                    f" ua={summary.user_agent or '-'}"
                )
    finally:
        store.close()


def _control(url: str, path: str, payload: Any | None = None) -> dict[str, Any]:
    full = url.rstrip("/") + CONTROL_PREFIX + path
    if not full.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise typer.BadParameter("the emulator control endpoint must be local", param_hint="--url")
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 - local http URL checked above
        full,
        data=data,
        method="GET" if data is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    # The emulator is local; never route control requests through HTTP_PROXY.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        typer.echo(exc.read().decode("utf-8", "replace"), err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"cannot reach {url}: {exc}", err=True)
        raise typer.Exit(1) from None


def _given(**options: Any) -> dict[str, Any]:
    """The options that were given; an absent one (None) leaves the emulator's default."""
    return {name: value for name, value in options.items() if value is not None}


FAULT_ACTIONS = (
    "fail-next",
    "fail-fraction",
    "poison",
    "latency",
    "hang",
    "drop",
    "down",
    "up",
    "release",
    "clear",
    "list",
)


@emulator_app.command("fault")
def fault_command(
    *,
    url: UrlOption,
    action: Annotated[str, typer.Argument(help=" | ".join(FAULT_ACTIONS))],
    n: Annotated[
        int | None,
        typer.Option(
            "--n", help="How many requests (default 1 for fail-next/drop, else unlimited)."
        ),
    ] = None,
    p: Annotated[float | None, typer.Option("--p", help="Probability (fail-fraction).")] = None,
    seed: Annotated[int, typer.Option(help="RNG seed for fractions.")] = 0,
    code: Annotated[str, typer.Option("--code", help="SLS errorCode to answer.")] = "ServerBusy",
    status: Annotated[int | None, typer.Option(help="HTTP status (default: by code).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Latency seconds.")] = None,
    key: Annotated[str | None, typer.Option(help="Poison: content key to test.")] = None,
    contains: Annotated[str | None, typer.Option(help="Poison: value contains.")] = None,
    equals: Annotated[str | None, typer.Option(help="Poison: value equals.")] = None,
    up_after: Annotated[float | None, typer.Option(help="Down: come back after seconds.")] = None,
    project: Annotated[str | None, typer.Option(help="Scope: project.")] = None,
    logstore: Annotated[str | None, typer.Option(help="Scope: logstore.")] = None,
) -> None:
    """Add or clear a fault on a running emulator (control endpoint); prints JSON."""
    if action not in FAULT_ACTIONS:
        raise typer.BadParameter(f"choose one of {', '.join(FAULT_ACTIONS)}", param_hint="ACTION")
    if action == "list":
        typer.echo(json.dumps(_control(url, "faults")))
        return
    spec: dict[str, Any] = {"action": action.replace("-", "_")}
    scope = _given(project=project, logstore=logstore)
    if action in ("fail-next", "fail-fraction"):
        spec.update(error_code=code, **scope, **_given(status=status, n=n))
        if action == "fail-fraction":
            if p is None:
                raise typer.BadParameter("fail-fraction needs --p", param_hint="--p")
            spec.update(p=p, seed=seed)
    elif action == "poison":
        spec["spec"] = _given(key=key, contains=contains, equals=equals)
        spec.update(scope)
        if code != "ServerBusy":
            spec["error_code"] = code
        spec.update(_given(n=n))
    elif action == "latency":
        if seconds is None:
            raise typer.BadParameter("latency needs --seconds", param_hint="--seconds")
        spec.update(seconds=seconds, **scope, **_given(n=n))
    elif action in ("hang", "drop"):
        spec.update(scope, **_given(n=n))
        if action == "drop" and p is not None:
            spec.update(p=p, seed=seed)
    elif action == "down":
        spec.update(_given(up_after=up_after))
    typer.echo(json.dumps(_control(url, "faults", spec)))


@emulator_app.command("stats")
def stats_command(url: UrlOption) -> None:
    """Print request counters, fired faults and active faults of a running emulator."""
    typer.echo(json.dumps(_control(url, "stats")))


def main() -> None:  # pragma: no cover - exercised through subprocess tests
    serve_app(prog_name=f"{sys.executable} -m yai_spool.emulator")
