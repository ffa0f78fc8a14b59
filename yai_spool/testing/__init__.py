"""Helpers for testing your own logging against a real, local SLS (as ``structlog.testing``).

Owns :class:`SLSEmulator` (a running emulator on 127.0.0.1 with credentials, plus the
helpers a test needs: build handlers wired to it, wait for records, read them as text),
:class:`DeliveredRecord` (one log SLS would store, fields decoded to ``str``) and the field
matchers (:data:`ANY`, :data:`ABSENT`, :func:`regex`, :func:`contains`), and two small
helpers around them: :func:`attached` (a handler on a logger for one ``with`` block) and
:func:`wait_until` (poll a condition with a deadline). The pytest fixtures
``sls_emulator`` and ``sls_handler`` live in :mod:`yai_spool.testing.pytest_plugin`, which
pytest loads by itself once yai-spool is installed (entry point ``pytest11``).

Usage without pytest::

    with SLSEmulator.running() as sls:
        handler = sls.handler()
        logging.getLogger("app").addHandler(handler)
        logging.getLogger("app").warning("disk almost full", extra={"free_mb": 120})
        [record] = sls.wait_for(1, message="disk almost full")
        assert record["free_mb"] == "120"

Invariants:

- Everything is real: the emulator speaks the PutLogs protocol and verifies signatures, the
  handlers are the ones an application uses; nothing is mocked.
- Waiting is event-driven: :meth:`SLSEmulator.wait_for` sleeps until the emulator answers
  a request, never on a fixed delay, and fails with what *did* arrive after ``timeout``.
  :func:`wait_until` is for what nothing signals (a handler's ``stats()``, a file): it
  polls at a short interval, and the condition, never the sleep, decides.
- ``close()`` closes every handler built by :meth:`SLSEmulator.handler` (draining what they
  hold) before the emulator stops, so no test leaves a thread or a server behind.
- Importing this module imports neither the emulator nor a handler: pytest loads it in
  every test session of a project that has yai-spool installed.
- The credentials are test values made up per emulator; nothing here reads the environment.
"""

from __future__ import annotations

import logging
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from unittest.mock import ANY

if TYPE_CHECKING:
    from yai_spool.emulator import Emulator
    from yai_spool.shipping.retry import RetryPolicy

__all__ = [
    "ABSENT",
    "ANY",
    "DeliveredRecord",
    "SLSEmulator",
    "attached",
    "contains",
    "fast_retry",
    "regex",
    "wait_until",
]

#: Default destination of :class:`SLSEmulator` (valid SLS project and logstore names).
DEFAULT_PROJECT: Final = "test-project"
DEFAULT_LOGSTORE: Final = "test-logstore"


class _Absent:
    """Matcher: the field must not be present (``wait_for(1, trace_id=ABSENT)``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


#: Matches a field that is not in the record. (``ANY``: present, with any value.)
ABSENT: Final = _Absent()


@dataclass(frozen=True, slots=True)
class _Regex:
    pattern: re.Pattern[str]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"regex({self.pattern.pattern!r})"


@dataclass(frozen=True, slots=True)
class _Contains:
    text: str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.text in other

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"contains({self.text!r})"


def regex(pattern: str | re.Pattern[str]) -> Any:
    """Matcher: the whole field value matches ``pattern`` (``re.fullmatch``)."""
    return _Regex(re.compile(pattern) if isinstance(pattern, str) else pattern)


def contains(text: str) -> Any:
    """Matcher: the field value contains ``text`` (e.g. a traceback line in ``exc_text``)."""
    return _Contains(text)


def _field_matches(fields: Mapping[str, str], key: str, expected: object) -> bool:
    if expected is ABSENT:
        return key not in fields
    if key not in fields:
        return False
    value = fields[key]
    if isinstance(expected, re.Pattern):
        return expected.fullmatch(value) is not None
    if callable(expected):
        return bool(expected(value))
    return value == expected


@dataclass(frozen=True, slots=True, eq=False)
class DeliveredRecord(Mapping[str, str]):
    """One log the emulator accepted: its contents as ``str`` (a read-only mapping).

    ``record["message"]``, ``record.get("trace_id")``, ``record == {...}`` (compares the
    fields), ``dict(record)``; the group fields
    (``topic``, ``source``, ``tags``), the time, the destination and the request id too.
    Values are decoded from UTF-8 (invalid bytes become U+FFFD); with duplicate keys the
    first value wins.
    """

    fields: Mapping[str, str]
    topic: str = ""
    source: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    time: int = 0
    time_ns: int | None = None
    project: str = ""
    logstore: str = ""
    request_id: str = ""

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        return f"DeliveredRecord({dict(self.fields)!r}, topic={self.topic!r})"

    def matches(self, where: Mapping[str, object] | None = None, /, **fields: object) -> bool:
        """True when every given field matches: equal to the value, or the matcher agrees.

        Expected values: a ``str`` (equality), :data:`ANY` (present), :data:`ABSENT` (not
        present), :func:`regex` / :func:`contains` / a compiled pattern, or a predicate
        ``str -> bool``. ``where`` takes keys that are not Python identifiers or that clash
        with a parameter name.
        """
        wanted = {**(where or {}), **fields}
        return all(_field_matches(self.fields, k, v) for k, v in wanted.items())


def _delivered(log: Any) -> DeliveredRecord:
    fields: dict[str, str] = {}
    for key, value in log.contents:
        fields.setdefault(key, value.decode("utf-8", "replace"))
    return DeliveredRecord(
        fields=fields,
        topic=log.topic,
        source=log.source,
        tags=dict(log.tags),
        time=log.time,
        time_ns=log.time_ns,
        project=log.project,
        logstore=log.logstore,
        request_id=log.request_id,
    )


def fast_retry(cap: float = 0.1) -> RetryPolicy:
    """A ``RetryPolicy`` for tests: retries after ~10 ms up to ``cap`` seconds, whatever failed.

    Transient, quota and credential failures all start at 10 ms (an outage in a test lasts
    well under a second), and records never expire (``max_age=None``). The default of
    :meth:`SLSEmulator.handler`.
    """
    from yai_spool.shipping.retry import RetryPolicy  # noqa: PLC0415 - on use only

    return RetryPolicy(
        base=0.01,
        cap=cap,
        throttle_base=0.01,
        throttle_cap=cap,
        credentials_base=0.01,
        credentials_cap=cap,
        max_age=None,
    )


def wait_until(
    predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass; True if it became true.

    For conditions nothing signals, e.g. ``wait_until(lambda: handler.stats()["flusher"])``;
    records are better awaited with :meth:`SLSEmulator.wait_for`, which wakes on every
    request. ``predicate`` is called at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)  # a poll interval, not a synchronisation point


@contextmanager
def attached(
    logger: str | logging.Logger, handler: logging.Handler, *, level: int | str = logging.INFO
) -> Iterator[logging.Logger]:
    """``handler`` on ``logger`` (a name or a logger) at ``level`` for one ``with`` block.

    Yields the logger; at exit the handler is removed and the logger's level restored (the
    handler is not closed: whoever built it does that, e.g. :meth:`SLSEmulator.close`).
    """
    log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    previous = log.level
    log.addHandler(handler)
    log.setLevel(level)
    try:
        yield log
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)


@dataclass(kw_only=True, eq=False, repr=False)
class SLSEmulator:
    """A running local SLS emulator with credentials, and helpers to test logging against it.

    Build it with :meth:`running` (a context manager) or use the ``sls_emulator`` pytest
    fixture. Attributes: ``url`` (the endpoint), ``project`` / ``logstore`` (the default
    destination), ``access_key_id`` / ``access_key_secret`` (made up per emulator; the
    emulator verifies every signature), ``emulator`` (the underlying
    :class:`~yai_spool.emulator.Emulator`: faults, counters, raw requests), ``spool_dir``
    (where :meth:`handler` puts spool files; a temporary directory made on first use when
    None, removed by :meth:`close`).
    """

    emulator: Emulator = field(kw_only=False)
    access_key_id: str
    access_key_secret: str
    project: str = DEFAULT_PROJECT
    logstore: str = DEFAULT_LOGSTORE
    spool_dir: Path | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)
    _handlers: list[logging.Handler] = field(default_factory=list, init=False)
    _spools: int = field(default=0, init=False)

    @classmethod
    @contextmanager
    def running(
        cls,
        *,
        project: str = DEFAULT_PROJECT,
        logstore: str = DEFAULT_LOGSTORE,
        spool_dir: Path | None = None,
        **config: Any,
    ) -> Iterator[SLSEmulator]:
        """Start an emulator on 127.0.0.1 (a free port); close everything on exit.

        ``config`` goes to :class:`~yai_spool.emulator.EmulatorConfig` (limits, error
        codes...); ``access_keys`` is set for you.
        """
        from yai_spool.emulator import Emulator, EmulatorConfig  # noqa: PLC0415 - on use only

        key_id = "LTAItest" + secrets.token_hex(6)
        secret = secrets.token_urlsafe(18)
        emulator = Emulator(EmulatorConfig(access_keys={key_id: secret}, **config))
        sls = cls(
            emulator,
            access_key_id=key_id,
            access_key_secret=secret,
            project=project,
            logstore=logstore,
            spool_dir=spool_dir,
        )
        emulator.start()
        try:
            yield sls
        finally:
            sls.close()

    def __repr__(self) -> str:  # never the secret
        return f"<SLSEmulator {self.url} {self.project}/{self.logstore}>"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``endpoint`` of handlers and clients."""
        return self.emulator.url

    # -- wiring ------------------------------------------------------------------------

    def handler_options(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ``SpoolHandler`` / ``make_handler`` / a ``dictConfig`` entry.

        ``endpoint``, ``project``, ``logstore`` and the credentials, plus ``overrides``.
        """
        return {
            "endpoint": self.url,
            "project": self.project,
            "logstore": self.logstore,
            "access_key_id": self.access_key_id,
            "access_key_secret": self.access_key_secret,
            **overrides,
        }

    def env(self) -> dict[str, str]:
        """Environment variables pointing code that reads them here (``monkeypatch.setenv``).

        The standard ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``
        (read by every handler without explicit keys) and ``YAI_SPOOL_ENDPOINT``.
        """
        return {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": self.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.access_key_secret,
            "YAI_SPOOL_ENDPOINT": self.url,
        }

    def handler(self, mode: str = "spool", **options: Any) -> logging.Handler:
        """A handler of ``mode`` (``make_handler``'s modes) shipping here; closed by ``close()``.

        Defaults suited to tests, each overridable: a spool file of its own in a temporary
        directory, ``linger=0`` (ship at once) and retries after ~10-100 ms, where the mode
        takes them. Attach it to the logger you test; it is never attached for you.
        """
        from yai_spool.handlers.configure import accepted_keys, make_handler  # noqa: PLC0415

        accepted = set(accepted_keys(mode, options.get("queue")))
        defaults: dict[str, Any] = {"linger": 0.0, "retry": fast_retry()}
        if "spool_path" in accepted:
            self._spools += 1
            defaults["spool_path"] = self._directory() / f"handler-{self._spools}.spool"
        chosen = {k: v for k, v in defaults.items() if k in accepted}
        handler = make_handler(mode, **self.handler_options(**{**chosen, **options}))
        self._handlers.append(handler)
        return handler

    def _directory(self) -> Path:
        if self.spool_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="yai-spool-test-")
            self.spool_dir = Path(self._tmp.name)
        return self.spool_dir

    # -- reading what arrived ------------------------------------------------------------

    def records(
        self,
        where: Mapping[str, object] | None = None,
        /,
        *,
        project: str | None = None,
        logstore: str | None = None,
        **fields: object,
    ) -> list[DeliveredRecord]:
        """Records accepted so far for the destination, in arrival order, that match.

        Matching as :meth:`DeliveredRecord.matches`; no argument returns all of them.
        """
        logs = self.emulator.logs(project or self.project, logstore or self.logstore)
        out = [_delivered(log) for log in logs]
        if where or fields:
            out = [r for r in out if r.matches(where, **fields)]
        return out

    def wait_for(
        self,
        n: int = 1,
        where: Mapping[str, object] | None = None,
        /,
        *,
        timeout: float = 10.0,
        project: str | None = None,
        logstore: str | None = None,
        **fields: object,
    ) -> list[DeliveredRecord]:
        """Wait until at least ``n`` matching records arrived; return all matching ones.

        Wakes on every request the emulator finishes (no fixed sleeps).

        Raises:
            AssertionError: after ``timeout`` seconds, naming what was expected and what
                did arrive (so a failing test says why).
        """
        deadline = time.monotonic() + timeout
        while True:
            seen = self.emulator.counters().requests
            found = self.records(where, project=project, logstore=logstore, **fields)
            if len(found) >= n:
                return found
            left = deadline - time.monotonic()
            if left <= 0 or not self.emulator.wait_for_requests(seen + 1, timeout=left):
                found = self.records(where, project=project, logstore=logstore, **fields)
                if len(found) >= n:
                    return found
                arrived = self.records(project=project, logstore=logstore)
                wanted = {**(where or {}), **fields}
                raise AssertionError(
                    f"expected {n} record(s) matching {wanted!r} within {timeout:g}s, "
                    f"got {len(found)}; the {len(arrived)} record(s) that arrived: "
                    f"{_summaries(arrived)}"
                )

    def clear(self) -> None:
        """Forget the records received so far (faults and counters stay)."""
        self.emulator.clear()

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the handlers built here (each drains), then stop the emulator."""
        handlers, self._handlers = self._handlers, []
        for handler in handlers:
            handler.close()
        self.emulator.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _summaries(records: Sequence[DeliveredRecord], limit: int = 10) -> str:
    shown = [dict(r.fields) for r in records[:limit]]
    more = f" and {len(records) - limit} more" if len(records) > limit else ""
    return f"{shown!r}{more}"


#: What ``sls_handler`` (the factory fixture) is: ``sls_handler(mode="memory", topic="x")``.
HandlerFactory = Callable[..., "logging.Handler"]
