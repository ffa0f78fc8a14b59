"""The local SLS emulator: HTTP server + PutLogs checks + faults + SQLite store, wired.

Owns: request dispatch (PutLogs paths vs the ``/_emulator/`` control endpoint), applying
faults, the SLS response envelope, request counters, and the ``Emulator`` lifecycle
(``start``/``stop``/``close``, context manager, ``down``/``up``). Also ``serve()``, the
blocking entry point of the subprocess mode.

Invariants:
- Success is exactly ``200`` with an empty body, ``Content-Length: 0`` and a lower-case
  ``x-log-requestid`` of 24 upper-case hex characters; errors are JSON
  ``{"errorCode", "errorMessage"}`` with the same header and the status from
  ``errors.DEFAULT_STATUS`` (overridable per code in the config).
- A batch is stored (one SQLite transaction) *before* the 200 is written: a client that
  saw 200 can always read its logs back.
- The control endpoint lives under ``/_emulator/``: SLS resource paths all start with
  ``/logstores`` (or ``/`` for project-level APIs), so it cannot collide.
- ``stop()`` never waits on a held request or a latency fault for longer than its bounded
  join; the store stays readable after ``stop()`` and is closed by ``close()`` (which
  ``__exit__`` calls). After ``close()``, reads of a file database reopen it read-only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, Self, TextIO

from yai_spool.emulator.config import EmulatorConfig
from yai_spool.emulator.faults import Faults
from yai_spool.emulator.httpserver import (
    Connection,
    HttpRequest,
    HttpResponse,
    HttpServer,
    ServerSettings,
)
from yai_spool.emulator.putlogs import (
    AuthInfo,
    Destination,
    KeyChecker,
    Rejection,
    check_put_logs,
    route,
)
from yai_spool.emulator.store import EmulatorStore, RequestSummary, StoredLog
from yai_spool.sls.errors import DEFAULT_STATUS, ErrorCode
from yai_spool.sls.signing import parse_authorization

__all__ = ["CONTROL_PREFIX", "Counters", "Emulator", "serve"]

CONTROL_PREFIX = "/_emulator/"

# Headers worth keeping in a request summary, besides every x-log-*/x-acs-* header (the ones
# a V1 signature may cover); Authorization never is, the STS token only as "<present>".
_SUMMARY_HEADERS = (
    "host",
    "user-agent",
    "content-type",
    "content-length",
    "content-md5",
    "date",
    "x-log-date",
    "x-log-apiversion",
    "x-log-bodyrawsize",
    "x-log-compresstype",
    "x-log-signaturemethod",
    "x-log-content-sha256",
    "x-log-hashkey",
)

_JSON = ("Content-Type", "application/json")

# Hang faults poll the client socket this often to notice a client that gave up; the
# release/stop events wake the wait immediately, this only bounds the "client gone" lag.
_HANG_POLL_S = 0.05


@dataclass(frozen=True)
class Counters:
    """A snapshot of request counters since start (``clear()`` does not reset them)."""

    requests: int = 0
    accepted_logs: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    by_error_code: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    faults_fired: dict[str, int] = field(default_factory=dict)

    def outcome(self, name: str) -> int:
        return self.by_outcome.get(name, 0)

    def to_json(self) -> dict[str, Any]:
        # Every field as is, but JSON object keys are strings: the statuses become "200".
        return asdict(self) | {"by_status": {str(k): v for k, v in self.by_status.items()}}


@dataclass(slots=True)
class _Exchange:
    """One PutLogs request on its way through the handler."""

    request: HttpRequest
    request_id: str
    dest: Destination | None = None
    auth: AuthInfo | None = None


def _request_id() -> str:
    return f"{random.getrandbits(96):024X}"


class Emulator:
    """A running (after ``start()``) local SLS PutLogs endpoint.

    ``with Emulator(EmulatorConfig(access_keys={"id": "secret"})) as emu:`` starts it on
    ``emu.url`` in background threads; point ``PutLogsClient`` at ``emu.url`` or an official
    client at a fake ``http://`` endpoint with ``HTTP_PROXY=emu.url``.
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = EmulatorConfig(**overrides)
        elif overrides:
            raise TypeError("pass either an EmulatorConfig or keyword overrides, not both")
        self.config = config
        self._keys = KeyChecker(config)
        self.store = EmulatorStore(config.db_path)
        settings = ServerSettings(
            host=config.host,
            port=config.port,
            keepalive_timeout=config.keepalive_timeout,
            max_header_bytes=config.max_header_bytes,
            # Compressed bodies can exceed the raw size a little (incompressible data, zstd
            # frame overhead); beyond this margin the wire body is discarded unread.
            max_body_bytes=config.max_body_bytes + max(1 << 20, config.max_body_bytes // 8),
        )
        self._server = HttpServer(self._handle, settings)
        self.faults = Faults(self._status_for, config.poison_code, lifecycle=self._server)
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._counts: Counter[str] = Counter()
        self._codes: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._per_dest: Counter[tuple[str, str]] = Counter()
        self._requests = 0
        self._accepted_logs = 0
        self.last_request_at = time.monotonic()
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._closed:
            raise RuntimeError("emulator is closed")
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stop serving: close the listener and every connection, release held requests.
        The store stays open for reads."""
        self.faults.shutdown()
        self._server.stop()

    def close(self) -> None:
        """``stop()`` and close the store."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self.store.close()

    def __enter__(self) -> Self:
        return self.start() if not self._started else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def down(self) -> None:
        """Refuse connections on the port (and drop open ones) until ``up()``."""
        self.faults.down()

    def up(self) -> None:
        self.faults.up()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the endpoint for our clients and ``HTTP_PROXY``."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server.is_up

    # -- reading what was received ------------------------------------------------------

    @contextmanager
    def _reader(self) -> Iterator[EmulatorStore]:
        if not self.store.closed:
            yield self.store
            return
        if self.config.db_path is None:
            raise RuntimeError(
                "the emulator is closed and its memory store is gone; read inside the "
                "'with' block or set EmulatorConfig.db_path"
            )
        store = EmulatorStore(self.config.db_path, read_only=True)
        try:
            yield store
        finally:
            store.close()

    def logs(self, project: str, logstore: str) -> list[StoredLog]:
        """Every accepted log for a destination, in arrival order, values as bytes."""
        with self._reader() as store:
            return store.logs(project, logstore)

    def count(self, project: str, logstore: str) -> int:
        with self._reader() as store:
            return store.count(project, logstore)

    def raw_batches(self, project: str, logstore: str) -> list[tuple[str, bytes]]:
        """(request id, decompressed LogGroup bytes) per accepted request."""
        with self._reader() as store:
            return store.raw_batches(project, logstore)

    def requests(
        self, project: str | None = None, logstore: str | None = None
    ) -> list[RequestSummary]:
        """A summary of every PutLogs request seen (accepted, rejected, faulted)."""
        with self._reader() as store:
            return store.requests(project, logstore)

    def destinations(self) -> list[tuple[str, str, int, int]]:
        with self._reader() as store:
            return store.destinations()

    def clear(self) -> None:
        """Forget stored logs and request summaries (counters and faults are kept)."""
        self.store.clear()
        with self._lock:
            self._per_dest.clear()

    def counters(self) -> Counters:
        with self._lock:
            return Counters(
                requests=self._requests,
                accepted_logs=self._accepted_logs,
                by_outcome=dict(self._counts),
                by_error_code=dict(self._codes),
                by_status=dict(self._statuses),
                faults_fired=self.faults.fired(),
            )

    def wait_for_count(
        self, project: str, logstore: str, count: int, timeout: float = 10.0
    ) -> bool:
        """Block until at least ``count`` logs were accepted for a destination since the
        last ``clear()``; False on timeout. Event-driven, no polling of the database."""
        key = (project, logstore)
        with self._progress:
            return self._progress.wait_for(lambda: self._per_dest[key] >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` PutLogs requests finished (any outcome)."""
        with self._progress:
            return self._progress.wait_for(lambda: self._requests >= count, timeout)

    # -- request handling --------------------------------------------------------------

    def _status_for(self, code: str) -> int:
        override = self.config.status_overrides.get(code)
        if override is not None:
            return override
        try:
            return DEFAULT_STATUS[ErrorCode(code)]
        except (ValueError, KeyError):
            return 400

    def _error(
        self, code: str, message: str, request_id: str, status: int | None = None
    ) -> HttpResponse:
        code = str(code)  # ErrorCode members are StrEnums; store and count plain strings
        body = json.dumps({"errorCode": code, "errorMessage": message}).encode()
        return HttpResponse(
            self._status_for(code) if status is None else status,
            [("x-log-requestid", request_id), _JSON],
            body,
        )

    def _handle(self, request: HttpRequest, conn: Connection) -> HttpResponse | None:
        self.last_request_at = time.monotonic()
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        ex = _Exchange(request, _request_id())
        try:
            ex.dest = route(request)
        except Rejection as rej:
            return self._finish(ex, rej.code, rej.message, "rejected")
        dest = ex.dest
        if dest is None:
            message = f"the emulator serves only PutLogs; no route for {request.method} "
            return self._finish(
                ex, ErrorCode.InvalidParameter, message + request.path, "rejected", status=404
            )
        if request.method != "POST":
            message = f"method {request.method} is not allowed for PutLogs"
            return self._finish(ex, ErrorCode.InvalidParameter, message, "rejected", status=405)

        decision = self.faults.decide(dest.project, dest.logstore)
        if decision.latency and conn.stopping.wait(decision.latency):
            return self._drop(ex, "abandoned")
        if decision.hang is not None and not self._hold(decision.hang, conn):
            return self._drop(ex, "abandoned")
        if decision.drop:
            return self._drop(ex, "dropped")
        if decision.fail is not None:
            status, code, message = decision.fail
            return self._finish(
                ex, code, message, "fault", status=status, retry_after=decision.retry_after
            )

        try:
            auth, accepted = check_put_logs(self.config, request, dest, keys=self._keys)
        except Rejection as rej:
            return self._finish(ex, rej.code, rej.message, "rejected")
        ex.auth = auth

        if self.faults.has_poison(dest.project, dest.logstore):
            logs = StoredLog.from_group(
                accepted.decoded(), ex.request_id, dest.project, dest.logstore
            )
            hit = self.faults.check_poison(dest.project, dest.logstore, logs)
            if hit is not None:
                status, code, message = hit
                return self._finish(ex, code, message, "poisoned", status=status)

        log_count = accepted.stats.log_count
        summary = self._summary(
            ex, 200, None, "accepted", raw_size=accepted.raw_size, log_count=log_count
        )
        # Store before answering: a 200 promises the batch is readable.
        self.store.record(summary, accepted.raw, keep_summary=self.config.store_requests)
        with self._progress:
            self._count(summary)
            self._accepted_logs += log_count
            self._per_dest[(dest.project, dest.logstore)] += log_count
            self._progress.notify_all()
        return HttpResponse(200, [("x-log-requestid", ex.request_id)])

    def _hold(self, release: threading.Event, conn: Connection) -> bool:
        """Hold a request until released (True) or client/server gone (False)."""
        self.faults.hold_started()
        try:
            while not release.wait(_HANG_POLL_S):
                if conn.stopping.is_set() or conn.client_gone():
                    return False
            return not conn.stopping.is_set()
        finally:
            self.faults.hold_ended()

    def _summary(
        self,
        ex: _Exchange,
        status: int | None,
        code: str | None,
        outcome: str,
        *,
        raw_size: int | None = None,
        log_count: int = 0,
    ) -> RequestSummary:
        request, dest, auth = ex.request, ex.dest, ex.auth
        headers = request.headers
        kept = {name: headers[name] for name in _SUMMARY_HEADERS if name in headers}
        kept.update(
            (name, value)
            for name, value in headers.items()
            if name.startswith(("x-log-", "x-acs-")) and name not in kept
        )
        if "x-acs-security-token" in headers:
            kept["x-acs-security-token"] = "<present>"
        if raw_size is None:
            raw = headers.get("x-log-bodyrawsize", "")
            raw_size = int(raw) if raw.isdigit() else None
        authorization = headers.get("authorization")
        return RequestSummary(
            request_id=ex.request_id,
            received_at=time.time(),
            method=request.method,
            path=request.path,
            query=request.raw_query,
            project=dest.project if dest else "",
            logstore=dest.logstore if dest else "",
            status=status,
            error_code=None if code is None else str(code),
            outcome=outcome,
            compress_type=headers.get("x-log-compresstype"),
            user_agent=headers.get("user-agent"),
            auth_version=(auth and auth.version) or _auth_version(authorization),
            access_key_id=(auth and auth.access_key_id) or _key_id(authorization),
            body_bytes=len(request.body),
            raw_size=raw_size,
            log_count=log_count,
            peer=request.peer,
            headers=kept,
        )

    def _count(self, summary: RequestSummary) -> None:
        # Caller holds self._lock.
        self._requests += 1
        self._counts[summary.outcome] += 1
        if summary.error_code:
            self._codes[summary.error_code] += 1
        if summary.status is not None:
            self._statuses[summary.status] += 1

    def _record(self, summary: RequestSummary) -> None:
        if self.config.store_requests:
            self.store.record(summary, None)
        with self._progress:
            self._count(summary)
            self._progress.notify_all()

    def _finish(
        self,
        ex: _Exchange,
        code: str,
        message: str,
        outcome: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> HttpResponse:
        response = self._error(code, message, ex.request_id, status)
        if retry_after is not None:
            response.headers.append(("Retry-After", f"{retry_after:g}"))
        self._record(self._summary(ex, response.status, code, outcome))
        return response

    def _drop(self, ex: _Exchange, outcome: str) -> HttpResponse | None:
        """Record a request left unanswered; the None returned closes it without a response."""
        self._record(self._summary(ex, None, None, outcome))
        return None

    # -- control endpoint --------------------------------------------------------------

    def _control(self, request: HttpRequest) -> HttpResponse:
        action = request.path[len(CONTROL_PREFIX) :].strip("/")
        try:
            if action == "health" and request.method == "GET":
                return _json(200, {"ok": True, "up": self.is_up})
            if action == "stats" and request.method == "GET":
                return _json(
                    200,
                    {
                        **self.counters().to_json(),
                        "held": self.faults.held,
                        "faults": self.faults.active(),
                    },
                )
            if action == "faults" and request.method == "GET":
                return _json(200, {"faults": self.faults.active()})
            if action == "faults" and request.method == "POST":
                return self._control_faults(request.body)
            if action == "clear" and request.method == "POST":
                self.clear()
                return _json(200, {"ok": True})
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"errorCode": "InvalidParameter", "errorMessage": str(exc)})
        return _json(
            404,
            {
                "errorCode": "InvalidParameter",
                "errorMessage": f"no control action {request.method} {action!r}",
            },
        )

    def _control_faults(self, body: bytes) -> HttpResponse:
        doc = json.loads(body or b"{}")
        actions = doc if isinstance(doc, list) else [doc]
        ids: list[int] = []
        after: Callable[[], None] | None = None
        for spec in actions:
            if not isinstance(spec, dict):
                raise ValueError("each fault action must be a JSON object")
            if spec.get("action") == "down":
                # Going down closes this very connection: answer first, then go down.
                up_after = spec.get("up_after")
                extra = set(spec) - {"action", "up_after"}
                if extra:
                    raise ValueError(f"unknown fault fields: {sorted(extra)}")

                def after(up_after: float | None = up_after) -> None:
                    self.faults.down(None if up_after is None else float(up_after))

                continue
            rule_id = self.faults.add(spec)
            if rule_id is not None:
                ids.append(rule_id)
        response = _json(200, {"ok": True, "rule_ids": ids, "faults": self.faults.active()})
        if after is not None:
            response.close = True
            response.after = after
        return response


def _json(status: int, doc: dict[str, Any]) -> HttpResponse:
    return HttpResponse(status, [_JSON], json.dumps(doc).encode())


def _auth_version(authorization: str | None) -> str | None:
    if not authorization:
        return None
    if authorization.startswith("LOG "):
        return "v1"
    if authorization.startswith("SLS4-HMAC-SHA256"):
        return "v4"
    return "unknown"


def _key_id(authorization: str | None) -> str | None:
    if not authorization:
        return None
    try:
        return parse_authorization(authorization).access_key_id
    except ValueError:
        return None


def serve(
    config: EmulatorConfig,
    *,
    idle_timeout: float | None = None,
    max_lifetime: float | None = None,
    out: TextIO | None = None,
    ready: Callable[[Emulator], None] | None = None,
) -> int:
    """Run an emulator in the foreground until SIGINT/SIGTERM, ``idle_timeout`` seconds
    without a request, or ``max_lifetime`` seconds; returns the exit status (0).

    The first line written to ``out`` (stdout) is
    ``yai-spool emulator listening on http://127.0.0.1:PORT``, flushed, so a parent
    process can read the chosen port. Secrets are never printed.
    """
    out = sys.stdout if out is None else out
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    started = time.monotonic()
    emulator = Emulator(config)
    try:
        emulator.start()
        print(f"yai-spool emulator listening on {emulator.url}", file=out, flush=True)
        keys = ", ".join(sorted(config.access_keys)) or "none"
        print(
            f"verify_signatures={config.verify_signatures} access_key_ids={keys} "
            f"db={config.db_path or ':memory:'} pid={os.getpid()}",
            file=out,
            flush=True,
        )
        if ready is not None:
            ready(emulator)
        while True:
            now = time.monotonic()
            waits = [3600.0]
            if max_lifetime is not None:
                waits.append(started + max_lifetime - now)
            if idle_timeout is not None:
                if emulator.faults.held:
                    emulator.last_request_at = now  # a held request is not idleness
                waits.append(emulator.last_request_at + idle_timeout - now)
            wait = min(waits)
            if wait <= 0:
                reason = (
                    "max lifetime"
                    if max_lifetime is not None and (now - started >= max_lifetime)
                    else "idle timeout"
                )
                print(f"yai-spool emulator stopping: {reason}", file=out, flush=True)
                break
            if stop.wait(wait):
                print("yai-spool emulator stopping: signal", file=out, flush=True)
                break
    finally:
        emulator.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
