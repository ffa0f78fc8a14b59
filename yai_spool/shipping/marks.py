"""Which code is the shipping path: its own log records must never be fed back into a queue.

Owns the two marks a handler checks before it queues a record (``handlers.core``
``is_shipping_path``): :func:`in_flusher_thread` for the threads of a thread flusher (the
loop and its per-request send threads, marked by :func:`mark_flusher_thread`), and
:data:`shipping_task` for the asyncio flusher task and whatever it awaits.

Invariants: a mark is set only by the code that ships (never by an application thread or an
application task) and never cleared: a flusher thread or task ships until it ends.
"""

from __future__ import annotations

import contextvars
import threading

__all__ = ["in_flusher_thread", "mark_flusher_thread", "shipping_task"]

_local = threading.local()


def in_flusher_thread() -> bool:
    """True on a thread that ships records (its own log records must not be spooled)."""
    return getattr(_local, "flusher", False)


def mark_flusher_thread() -> None:
    """Mark the calling thread as shipping (see :func:`in_flusher_thread`)."""
    _local.flusher = True


#: True inside the asyncio flusher task (and whatever it awaits): its own records (httpx
#: debug logs) must not be queued. A ContextVar, because the task shares its thread with the
#: application; every other task of the loop sees False.
shipping_task: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "yai_spool.shipping_task", default=False
)
