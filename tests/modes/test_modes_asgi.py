"""RequestContextMiddleware on a bare ASGI app: ids, validation, echo, isolation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from yai_spool.handlers import context
from yai_spool.handlers.asgi import RequestContextMiddleware, trace_id_from_headers

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Recorder:
    """An ASGI app that records the bound context and answers 200 (or raises)."""

    def __init__(self, *, fail: bool = False, header: tuple[bytes, bytes] | None = None) -> None:
        self.seen: list[dict[str, object]] = []
        self.fail = fail
        self.header = header

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(0)  # let concurrent requests interleave
        mine = dict(context.current())
        self.seen.append(mine)
        # Work spawned by the request (a task, a thread through to_thread) sees the same.
        task_view = await asyncio.create_task(asyncio.to_thread(lambda: dict(context.current())))
        assert task_view == mine
        if self.fail:
            raise RuntimeError("boom")
        headers = [self.header] if self.header else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})


async def call(app: Any, headers: list[tuple[bytes, bytes]], path: str = "/p") -> list[Any]:
    sent: list[Any] = []
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def response_header(sent: list[Any], name: bytes) -> bytes | None:
    for key, value in sent[0].get("headers", []):
        if key == name:
            return value
    return None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([(b"traceparent", TRACEPARENT.encode())], "4bf92f3577b34da6a3ce929d0e0e4736"),
        ([(b"x-request-id", b"req-42")], "req-42"),
        (  # traceparent wins over x-request-id
            [(b"x-request-id", b"req-42"), (b"traceparent", TRACEPARENT.encode())],
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        ([(b"traceparent", b"00-" + b"0" * 32 + b"-00f067aa0ba902b7-01")], None),  # zero id
        ([(b"traceparent", b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")], None),
        ([(b"x-request-id", b"bad id\nInjected: yes")], None),
        ([(b"x-request-id", b"x" * 129)], None),
        ([], None),
    ],
)
def test_trace_id_from_headers(headers: list[tuple[bytes, bytes]], expected: str | None) -> None:
    assert trace_id_from_headers(headers) == expected


def test_binds_method_path_and_id_and_echoes_it() -> None:
    app = Recorder()
    sent = asyncio.run(call(RequestContextMiddleware(app), [(b"x-request-id", b"req-1")]))
    assert app.seen == [{"trace_id": "req-1", "http_method": "GET", "http_path": "/p"}]
    assert response_header(sent, b"x-request-id") == b"req-1"
    assert context.current() == {}  # restored


def test_fresh_ids_when_absent_or_untrusted_and_app_header_kept() -> None:
    app = Recorder(header=(b"x-request-id", b"set-by-app"))
    middleware = RequestContextMiddleware(app, trust_incoming=False, path_key=None)
    sent = asyncio.run(call(middleware, [(b"x-request-id", b"client-picked")]))
    bound = app.seen[0]
    assert bound["trace_id"] != "client-picked"
    assert len(str(bound["trace_id"])) == 32
    assert "http_path" not in bound
    assert response_header(sent, b"x-request-id") == b"set-by-app"


def test_concurrent_requests_are_isolated_and_errors_restore_context() -> None:
    app = Recorder()
    middleware = RequestContextMiddleware(app)

    async def many() -> None:
        await asyncio.gather(
            *(call(middleware, [(b"x-request-id", f"r-{i}".encode())], f"/{i}") for i in range(20))
        )

    asyncio.run(many())
    assert sorted((s["trace_id"], s["http_path"]) for s in app.seen) == sorted(
        (f"r-{i}", f"/{i}") for i in range(20)
    )
    failing = RequestContextMiddleware(Recorder(fail=True))
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(call(failing, []))
    assert context.current() == {}


def test_other_scopes_pass_through() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(context.current()))

    asyncio.run(RequestContextMiddleware(app)({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == [{}]
