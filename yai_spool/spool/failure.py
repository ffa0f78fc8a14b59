"""``Failure`` and ``SettleCalls``: how a failed send is told to a spool, written once.

Owns the description of one failed delivery (``Failure``: error code, message, request id,
HTTP status, throttled) and the keyword forms of the calls that record one: ``release``,
``dead_letter`` and ``record_error``. Every backend implements the three ``Failure`` forms
(``retry_later``, ``give_up``, ``record_failure``); the keyword forms build a ``Failure`` and
call them, so their signatures and their meaning exist in this one place for both backends
(and for :class:`~yai_spool.spool.SpoolBackend`, which extends this protocol).

Why a protocol with default methods and not a plain base class: ``SpoolBackend`` is
structural (a backend that drifts from it must fail mypy, see the contract tests), and a
protocol may only extend protocols. ``Spool`` and ``MemorySpool`` subclass ``SettleCalls``
explicitly to inherit the keyword forms; they do not subclass ``SpoolBackend``.

Invariants: ``Failure.code is None`` means "no error to record" (a ``release`` of records given
back unsent); the message and request id are still kept on the released records.
``give_up`` and ``record_failure`` are always given a code (the keyword forms require one).
Not on a per-record path: one call per batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeAlias, cast

from yai_spool.spool.types import Batch, LastError

__all__ = ["Failure", "SettleCalls", "SettleTarget"]

#: What a settle call acts on: a ``Batch`` (or part of one) by its lease, or plain ids.
SettleTarget: TypeAlias = Batch | Iterable[int]


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed delivery, as a spool records it (on the records and as its last error).

    Args:
        code: the error code (SLS's, or the exception's name); None: nothing failed.
        message, request_id: the answer's message and request id, when there was one.
        status: HTTP status of the answer (None: no HTTP answer).
        throttled: the answer was a quota error (``release`` and ``record_failure`` count a
            throttled request; ``give_up`` does not).
    """

    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    status: int | None = None
    throttled: bool = False

    @property
    def failed(self) -> bool:
        """True when there is an error to record (a code)."""
        return self.code is not None

    @property
    def row_error(self) -> tuple[str | None, str | None, str | None]:
        """``(code, message, request_id)``: what each released or dead record keeps."""
        return self.code, self.message, self.request_id

    def last_error(self, at: float) -> LastError:
        """The spool's ``last_error`` for this failure, recorded at ``at``."""
        # The code is set whenever this is called (module docstring); cast, not a check, so
        # a caller that breaks the types still gets exactly what it got before Failure.
        return LastError(cast(str, self.code), self.message or "", self.request_id, at, self.status)


#: "Nothing failed": a release without an error.
NO_FAILURE = Failure()


class SettleCalls(Protocol):
    """Settling after a failed send; the keyword forms are written here, once."""

    def retry_later(
        self, target: SettleTarget, failure: Failure | None = None, *, count_attempt: bool = True
    ) -> int:
        """READY again in id order (attempts + 1 unless ``count_attempt=False``); how many.

        With a failure that has a code, also its spool's last error and a failed (maybe
        throttled) request; the records keep its code, message and request id.
        """
        ...

    def give_up(
        self, target: SettleTarget, failure: Failure, *, attempts: int | None = None
    ) -> int:
        """DEAD with the failure (``attempts`` default: attempts + 1); returns how many."""
        ...

    def record_failure(self, failure: Failure) -> None:
        """Record the last delivery error (and a throttled request) without moving records."""
        ...

    def release(
        self,
        target: SettleTarget,
        *,
        error_code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        throttled: bool = False,
        count_attempt: bool = True,
        status: int | None = None,
    ) -> int:
        """Retry later: READY again in id order (attempts + 1 by default); returns how many.

        The keyword form of :meth:`retry_later`. Only ids still leased by the lease (a
        ``Batch``) or by this handle (plain ids) move. With ``error_code``, also records it as
        the spool's last error (and a throttled request if ``throttled``); ``status`` is the
        HTTP status of that error (None: no HTTP answer). ``count_attempt=False`` leaves
        attempts unchanged (e.g. a batch given back unsent at shutdown).
        """
        failure = Failure(error_code, message, request_id, status, throttled)
        return self.retry_later(target, failure, count_attempt=count_attempt)

    def dead_letter(
        self,
        target: SettleTarget,
        *,
        error_code: str,
        message: str | None,
        request_id: str | None,
        attempts: int | None = None,
        status: int | None = None,
    ) -> int:
        """Give up: DEAD with the error (``attempts`` default: attempts + 1); returns how many.

        The keyword form of :meth:`give_up`. ``attempts`` is the final attempt count to store;
        ``status`` is the HTTP status of the error (None: no HTTP answer).
        """
        failure = Failure(error_code, message, request_id, status)
        return self.give_up(target, failure, attempts=attempts)

    def record_error(
        self,
        *,
        code: str,
        message: str,
        request_id: str | None = None,
        throttled: bool = False,
        status: int | None = None,
    ) -> None:
        """Record the last delivery error (and a throttled event) without moving records."""
        self.record_failure(Failure(code, message, request_id, status, throttled))
