"""A FastAPI service that logs to Alibaba Cloud SLS through yai-spool's asyncio mode.

What it shows:

- ``yai_spool.handlers.aio.lifespan(...)`` builds the handler at startup, attaches it to the root
  logger, runs an asyncio flusher task (native async HTTP, no thread pool), and drains it at
  shutdown; ``wrap=`` runs the service's own lifespan inside it, so the startup and shutdown
  records ship too.
- ``RequestContextMiddleware`` gives every request a trace id (from ``traceparent`` or
  ``x-request-id``, else a new one), echoed in the ``x-request-id`` response header and
  carried by every record the request makes: in the endpoint, in tasks it creates, in
  ``def`` endpoints (run on a worker thread with a copy of the context), in background tasks.

Configuration comes from the environment (credentials never from code or files):

- ``ALIBABA_CLOUD_ACCESS_KEY_ID`` / ``ALIBABA_CLOUD_ACCESS_KEY_SECRET`` (read per request)
- ``YAI_SPOOL_ENDPOINT`` (e.g. ``https://cn-hangzhou.log.aliyuncs.com``), ``SLS_PROJECT``,
  ``SLS_LOGSTORE``
- ``YAI_SPOOL_QUEUE``: ``spool`` (durable, default: records survive a crash and ship at the
  next start) or ``memory`` (lost on a crash; counted when lost at exit)

Run it: ``uvicorn --app-dir examples fastapi_app:app`` or ``python examples/fastapi_app.py``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI

from yai_spool.handlers.aio import lifespan
from yai_spool.handlers.asgi import RequestContextMiddleware
from yai_spool.handlers.context import get_trace_id

log = logging.getLogger("example.orders")
logging.getLogger().setLevel(logging.INFO)


@asynccontextmanager
async def service_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The service's own startup/shutdown (runs inside yai-spool's, so these records ship)."""
    log.info("service starting")
    yield
    log.info("service stopping")


app = FastAPI(
    lifespan=lifespan(
        mode="asyncio",
        queue=os.environ.get("YAI_SPOOL_QUEUE", "spool"),
        endpoint=os.environ.get("YAI_SPOOL_ENDPOINT", "https://cn-hangzhou.log.aliyuncs.com"),
        project=os.environ.get("SLS_PROJECT", "my-project"),
        logstore=os.environ.get("SLS_LOGSTORE", "app-logs"),
        topic="fastapi-example",
        linger=0.2,
        drain_timeout=5.0,
        wrap=service_lifespan,
    )
)
app.add_middleware(RequestContextMiddleware)


async def audit(order_id: str) -> None:
    log.info("audit: order %s was read", order_id, extra={"order_id": order_id})


def send_receipt(user: str) -> None:
    log.info("receipt sent to %s", user)


@app.get("/orders/{order_id}")
async def get_order(order_id: str) -> dict[str, str | None]:
    log.info("order %s looked up", order_id, extra={"order_id": order_id})
    await asyncio.create_task(audit(order_id))  # a task inherits the request context
    return {"order_id": order_id, "trace_id": get_trace_id()}


@app.get("/report")
def report() -> dict[str, str | None]:
    # A plain def endpoint: FastAPI runs it on a worker thread with a copy of the context.
    log.info("report built")
    return {"trace_id": get_trace_id()}


@app.post("/checkout/{user}")
async def checkout(user: str, background: BackgroundTasks) -> dict[str, str | None]:
    log.info("checkout by %s", user)
    background.add_task(send_receipt, user)  # after the response, same request context
    return {"trace_id": get_trace_id()}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
