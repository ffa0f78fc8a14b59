"""Fault injection: scripted failures the emulator applies to PutLogs requests.

Owns: the rule list (fail, hang, drop, latency, poison), its thread-safe bookkeeping, the
JSON form of each rule (used by the ``/_emulator/faults`` control endpoint and the CLI),
and the down/up switch (delegated to the HTTP server).

Invariants:
- Rules are checked in the order they were added. Every matching ``latency`` rule adds its
  delay; then the *first* matching ``hang``/``drop``/``fail`` rule whose probability draw
  succeeds fires. Only rules that fire consume a count; a rule whose count reaches zero is
  removed. Poison rules are checked separately, after the body decoded and passed every
  protocol check (a poison rejection is about the data, not the transport).
- Scope: a rule with ``project``/``logstore`` set only matches requests for them; ``None``
  matches everything.
- Randomness is a per-rule ``random.Random(seed)``, so ``fail_fraction`` is reproducible
  for a given request order.
- Waiting is interruptible: a held (hung) request ends when the rule is cleared
  (``clear()``/``release()``), the server stops, or its client goes away; a latency wait ends
  early when the server stops. Nothing here blocks ``Emulator.stop()``.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from yai_spool.emulator.store import StoredLog

__all__ = ["FaultDecision", "Faults", "PoisonSpec", "predicate_from_spec"]

Predicate = Callable[[StoredLog], bool]

_KINDS = ("fail", "hang", "drop", "latency", "poison")


class _Lifecycle(Protocol):
    def down(self) -> None: ...
    def up(self) -> None: ...


@dataclass(frozen=True, slots=True)
class PoisonSpec:
    """A JSON-able record predicate: ``key`` (None = any key) and one value test.

    ``contains``/``equals`` are compared on the raw bytes (the text is UTF-8 encoded).
    """

    key: str | None = None
    contains: str | None = None
    equals: str | None = None

    def __post_init__(self) -> None:
        if (self.contains is None) == (self.equals is None):
            raise ValueError("poison spec needs exactly one of 'contains' or 'equals'")

    def __call__(self, log: StoredLog) -> bool:
        values = (v for k, v in log.contents if self.key is None or k == self.key)
        if self.contains is not None:
            needle = self.contains.encode()
            return any(needle in v for v in values)
        target = (self.equals or "").encode()
        return any(v == target for v in values)

    def to_json(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("key", self.key), ("contains", self.contains), ("equals", self.equals))
            if v is not None
        }


def predicate_from_spec(spec: Mapping[str, Any]) -> PoisonSpec:
    """``{"key": "msg", "contains": "POISON"}`` -> a predicate over ``StoredLog``."""
    unknown = set(spec) - {"key", "contains", "equals"}
    if unknown:
        raise ValueError(f"unknown poison spec fields: {sorted(unknown)}")
    return PoisonSpec(key=spec.get("key"), contains=spec.get("contains"), equals=spec.get("equals"))


@dataclass(slots=True)
class _Rule:
    id: int
    kind: str
    project: str | None
    logstore: str | None
    remaining: int | None
    probability: float | None
    rng: random.Random | None
    status: int = 0
    error_code: str = ""
    message: str = ""
    seconds: float = 0.0
    retry_after: float | None = None  # fail rules: a Retry-After header on the answer
    predicate: Predicate | None = None
    fired: int = 0

    def matches(self, project: str, logstore: str) -> bool:
        return (self.project is None or self.project == project) and (
            self.logstore is None or self.logstore == logstore
        )

    def draw(self) -> bool:
        return self.rng is None or self.probability is None or self.rng.random() < self.probability

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "fired": self.fired,
            "remaining": self.remaining,
        }
        for name in ("project", "logstore", "probability"):  # shown only when set
            if (value := getattr(self, name)) is not None:
                out[name] = value
        if self.kind in ("fail", "poison"):
            out.update(status=self.status, error_code=self.error_code)
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.kind == "latency":
            out["seconds"] = self.seconds
        if isinstance(self.predicate, PoisonSpec):
            out["spec"] = self.predicate.to_json()
        return out


@dataclass(slots=True)
class FaultDecision:
    """What the faults say about one request before it is processed."""

    latency: float = 0.0
    hang: threading.Event | None = None  # set when the hang is released
    drop: bool = False
    fail: tuple[int, str, str] | None = None  # (status, errorCode, errorMessage)
    retry_after: float | None = None  # with fail: the Retry-After header to send
    fired: list[str] = field(default_factory=list)


class Faults:
    """Scripted faults; every method is thread-safe and returns the new rule's id.

    ``error_code``/``status`` are keyword-only: ``fail_next(2, error_code="ServerBusy")``.
    """

    def __init__(
        self,
        status_for: Callable[[str], int],
        poison_code: str,
        lifecycle: _Lifecycle | None = None,
    ) -> None:
        self._status_for = status_for
        self._poison_code = poison_code
        self._lifecycle = lifecycle
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._next_id = 1
        self._release = threading.Event()
        self._held = 0
        self._held_changed = threading.Condition(self._lock)
        self._fired: Counter[str] = Counter()
        self._down_timer: threading.Timer | None = None

    # -- adding rules ------------------------------------------------------------------

    def _add(
        self,
        kind: str,
        *,
        n: int | None,
        p: float | None,
        seed: int | None,
        project: str | None,
        logstore: str | None,
        **extra: Any,
    ) -> int:
        if n is not None and n < 1:
            raise ValueError(f"fault count must be >= 1 or None, got {n!r}")
        if p is not None and not 0.0 <= p <= 1.0:
            raise ValueError(f"fault probability must be within 0..1, got {p!r}")
        with self._lock:
            rule = _Rule(
                id=self._next_id,
                kind=kind,
                project=project,
                logstore=logstore,
                remaining=n,
                probability=p,
                rng=None if p is None else random.Random(seed),
                **extra,
            )
            self._next_id += 1
            self._rules.append(rule)
            return rule.id

    def _error(self, error_code: str, status: int | None, message: str | None) -> dict[str, Any]:
        return {
            "error_code": error_code,
            "status": self._status_for(error_code) if status is None else status,
            "message": message or f"injected fault: {error_code}",
        }

    def fail_next(
        self,
        n: int | None = 1,
        *,
        error_code: str = "ServerBusy",
        status: int | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        project: str | None = None,
        logstore: str | None = None,
    ) -> int:
        """Answer the next ``n`` matching requests (``None``: all, until cleared) with an
        SLS error. ``status`` defaults to ``errors.DEFAULT_STATUS[error_code]``;
        ``retry_after`` adds a ``Retry-After`` header (seconds) to the answer."""
        return self._add(
            "fail",
            n=n,
            p=None,
            seed=None,
            project=project,
            logstore=logstore,
            retry_after=retry_after,
            **self._error(error_code, status, message),
        )

    def fail_fraction(
        self,
        p: float,
        *,
        error_code: str = "ServerBusy",
        status: int | None = None,
        message: str | None = None,
        seed: int = 0,
        n: int | None = None,
        project: str | None = None,
        logstore: str | None = None,
    ) -> int:
        """Fail each matching request with probability ``p`` (seeded RNG), at most ``n``."""
        return self._add(
            "fail",
            n=n,
            p=p,
            seed=seed,
            project=project,
            logstore=logstore,
            **self._error(error_code, status, message),
        )

    def poison(
        self,
        predicate: Predicate | Mapping[str, Any],
        *,
        error_code: str | None = None,
        status: int | None = None,
        n: int | None = None,
        project: str | None = None,
        logstore: str | None = None,
    ) -> int:
        """Reject (``InvalidParameter`` 400 by default) every request holding a log for
        which ``predicate`` is true. ``predicate`` is a callable over ``StoredLog`` or a
        spec like ``{"key": "msg", "contains": "POISON"}``."""
        pred = predicate if callable(predicate) else predicate_from_spec(predicate)
        code = error_code or self._poison_code
        return self._add(
            "poison",
            n=n,
            p=None,
            seed=None,
            project=project,
            logstore=logstore,
            predicate=pred,
            **self._error(code, status, "poisoned record"),
        )

    def latency(
        self,
        seconds: float,
        *,
        n: int | None = None,
        p: float | None = None,
        seed: int = 0,
        project: str | None = None,
        logstore: str | None = None,
    ) -> int:
        """Delay matching requests by ``seconds`` before processing them."""
        if not seconds >= 0:
            raise ValueError("latency seconds must be >= 0")
        return self._add(
            "latency",
            n=n,
            p=p,
            seed=seed,
            project=project,
            logstore=logstore,
            seconds=float(seconds),
        )

    def hang(
        self, *, n: int | None = None, project: str | None = None, logstore: str | None = None
    ) -> int:
        """Hold matching requests without answering until the client gives up, the fault
        is cleared/released (the request is then processed normally) or the server stops."""
        return self._add("hang", n=n, p=None, seed=None, project=project, logstore=logstore)

    def close_mid_request(
        self,
        n: int | None = 1,
        *,
        p: float | None = None,
        seed: int = 0,
        project: str | None = None,
        logstore: str | None = None,
    ) -> int:
        """Read the whole request, then close the connection without any response."""
        return self._add("drop", n=n, p=p, seed=seed, project=project, logstore=logstore)

    drop = close_mid_request

    def add(self, spec: Mapping[str, Any]) -> int | None:
        """Apply one JSON action (control endpoint / CLI); see ``FAULT_ACTIONS`` in cli.py.

        ``{"action": "fail_next", "n": 3, "error_code": "ServerBusy"}``, ``fail_fraction``
        (``p``, ``seed``), ``poison`` (``spec``), ``latency`` (``seconds``), ``hang``,
        ``close_mid_request``, ``clear``, ``release``, ``down`` (optional ``up_after``),
        ``up``. All rule actions take ``project``/``logstore``. Returns the rule id, if any.
        """
        spec = dict(spec)
        action = spec.pop("action", None)
        scope = {"project": spec.pop("project", None), "logstore": spec.pop("logstore", None)}
        rule = _RULE_ACTIONS.get(action) if isinstance(action, str) else None
        if rule is not None:
            method, fields = rule
            # Fields are taken in table order, so a bad or missing one is reported before
            # leftovers are (the same order the hand-written calls had).
            args = dict(f.take(spec) for f in fields)
            _no_more(spec)
            return method(self, **args, **scope)
        up_after = spec.pop("up_after", None)
        _no_more(spec)
        if action == "clear":
            self.clear()
        elif action == "release":
            self.release()
        elif action == "down":
            self.down(up_after=None if up_after is None else float(up_after))
        elif action == "up":
            self.up()
        else:
            raise ValueError(f"unknown fault action {action!r}")
        return None

    # -- removing / inspecting ---------------------------------------------------------

    def release(self) -> None:
        """Let every held (hung) request continue; hang rules stay active for new ones."""
        with self._lock:
            self._release.set()
            self._release = threading.Event()

    def clear(self, kinds: Iterable[str] | None = None) -> None:
        """Remove rules (all, or only the given kinds) and release held requests."""
        wanted = set(_KINDS if kinds is None else kinds)
        with self._lock:
            self._rules = [r for r in self._rules if r.kind not in wanted]
        if "hang" in wanted:
            self.release()

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def active(self) -> list[dict[str, Any]]:
        """JSON-able description of the active rules."""
        with self._lock:
            return [r.describe() for r in self._rules]

    def fired(self) -> dict[str, int]:
        """How many times each kind of fault fired since start (never reset by clear)."""
        with self._lock:
            return dict(self._fired)

    @property
    def held(self) -> int:
        """Requests currently held by hang faults."""
        with self._lock:
            return self._held

    def wait_held(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` requests are held (test synchronisation)."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self._held >= count, timeout)

    # -- down / up ---------------------------------------------------------------------

    def down(self, up_after: float | None = None) -> None:
        """Refuse connections (close the listening socket and every connection); with
        ``up_after``, come back up on the same port after that many seconds."""
        if self._lifecycle is None:
            raise RuntimeError("faults are not attached to a server")
        self._cancel_timer()
        self._lifecycle.down()
        if up_after is not None:
            timer = threading.Timer(up_after, self._timed_up)
            timer.daemon = True
            self._down_timer = timer
            timer.start()

    def up(self) -> None:
        """Listen again on the same port."""
        if self._lifecycle is None:
            raise RuntimeError("faults are not attached to a server")
        self._cancel_timer()
        self._lifecycle.up()

    def _timed_up(self) -> None:
        # A timed up racing stop() raises RuntimeError("server stopped"): nothing to do then.
        if self._lifecycle is not None:
            try:
                self._lifecycle.up()
            except (RuntimeError, OSError):
                return

    def _cancel_timer(self) -> None:
        timer, self._down_timer = self._down_timer, None
        if timer is not None:
            timer.cancel()

    def shutdown(self) -> None:
        """Cancel timers and release held requests (called by ``Emulator.stop``)."""
        self._cancel_timer()
        self.release()

    # -- used by the request pipeline --------------------------------------------------

    def decide(self, project: str, logstore: str) -> FaultDecision:
        decision = FaultDecision()
        with self._lock:
            if not self._rules:
                return decision
            spent: list[_Rule] = []
            for rule in self._rules:
                if rule.kind == "poison" or not rule.matches(project, logstore):
                    continue
                if rule.kind == "latency":
                    if rule.draw():
                        decision.latency += rule.seconds
                        self._fire(rule, decision, spent)
                    continue
                if decision.hang or decision.drop or decision.fail or not rule.draw():
                    continue
                if rule.kind == "hang":
                    decision.hang = self._release
                elif rule.kind == "drop":
                    decision.drop = True
                else:
                    decision.fail = (rule.status, rule.error_code, rule.message)
                    decision.retry_after = rule.retry_after
                self._fire(rule, decision, spent)
            if spent:
                # By identity: two rules may compare equal field by field.
                self._rules = [r for r in self._rules if all(r is not x for x in spent)]
        return decision

    def _fire(self, rule: _Rule, decision: FaultDecision, spent: list[_Rule]) -> None:
        rule.fired += 1
        self._fired[rule.kind] += 1
        decision.fired.append(rule.kind)
        if rule.remaining is not None:
            rule.remaining -= 1
            if rule.remaining <= 0:
                spent.append(rule)

    def has_poison(self, project: str, logstore: str) -> bool:
        with self._lock:
            return any(r.kind == "poison" and r.matches(project, logstore) for r in self._rules)

    def check_poison(
        self, project: str, logstore: str, logs: Iterable[StoredLog]
    ) -> tuple[int, str, str] | None:
        """(status, code, message) if a poison rule matches any of ``logs``."""
        with self._lock:
            rules = [r for r in self._rules if r.kind == "poison" and r.matches(project, logstore)]
        if not rules:
            return None
        materialised = list(logs)
        for rule in rules:
            assert rule.predicate is not None
            if any(rule.predicate(log) for log in materialised):
                with self._lock:
                    spent: list[_Rule] = []
                    self._fire(rule, FaultDecision(), spent)
                    if spent:
                        self._rules = [r for r in self._rules if r is not rule]
                return rule.status, rule.error_code, rule.message
        return None

    def hold_started(self) -> None:
        with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()

    def hold_ended(self) -> None:
        with self._held_changed:
            self._held -= 1
            self._held_changed.notify_all()


def _no_more(spec: Mapping[str, Any]) -> None:
    if spec:
        raise ValueError(f"unknown fault fields: {sorted(spec)}")


_REQUIRED: Any = object()  # a field default meaning "the action must give this field"


class _Field(NamedTuple):
    """One JSON field of a rule action and the method parameter it fills."""

    key: str
    default: Any = _REQUIRED
    convert: Callable[[Any], Any] | None = None
    param: str | None = None  # the method's parameter name, when it is not ``key``

    def take(self, spec: dict[str, Any]) -> tuple[str, Any]:
        """(parameter, value): the field popped from ``spec`` (or its default), converted."""
        value = (
            spec.pop(self.key) if self.default is _REQUIRED else spec.pop(self.key, self.default)
        )
        return self.param or self.key, value if self.convert is None else self.convert(value)


_ERROR_FIELDS = (
    _Field("error_code", "ServerBusy"),
    _Field("status", None),
    _Field("message", None),
)
_SEED = _Field("seed", 0, int)
_DROP_FIELDS = (_Field("n", 1), _Field("p", None), _SEED)

#: The rule actions of :meth:`Faults.add`: JSON action -> (method, its fields in the order
#: they are read). Every one of them also takes ``project``/``logstore``.
_RULE_ACTIONS: dict[str, tuple[Callable[..., int], tuple[_Field, ...]]] = {
    "fail_next": (Faults.fail_next, (_Field("n", 1), *_ERROR_FIELDS, _Field("retry_after", None))),
    "fail_fraction": (
        Faults.fail_fraction,
        (_Field("p", convert=float), *_ERROR_FIELDS, _SEED, _Field("n", None)),
    ),
    "poison": (
        Faults.poison,
        (
            _Field("spec", convert=predicate_from_spec, param="predicate"),
            _Field("error_code", None),
            _Field("status", None),
            _Field("n", None),
        ),
    ),
    "latency": (
        Faults.latency,
        (_Field("seconds", convert=float), _Field("n", None), _Field("p", None), _SEED),
    ),
    "hang": (Faults.hang, (_Field("n", None),)),
    "close_mid_request": (Faults.close_mid_request, _DROP_FIELDS),
    "drop": (Faults.close_mid_request, _DROP_FIELDS),
}
