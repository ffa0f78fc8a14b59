"""The emulator's HTTP layer on real 127.0.0.1 sockets: targets, Host, keep-alive, lifecycle."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from pathlib import Path

import pytest
from emulator_support import (
    LOGSTORE,
    PROJECT,
    Answer,
    connect_refused,
    exchange,
    group_of,
    prepare,
    raw_of,
    send,
    signed_v1,
    unsigned,
)

from yai_spool.emulator import Emulator, EmulatorConfig
from yai_spool.sls.request import PreparedRequest


def post_fresh(conn: http.client.HTTPConnection, emu: Emulator) -> Answer:
    """A freshly signed PutLogs over ``conn`` (an open, possibly kept-alive connection)."""
    prepared = prepare(emu)
    return exchange(conn, "POST", "/logstores/store/shards/lb", prepared.headers, prepared.body)


def test_success_answer_is_200_empty_with_lowercase_request_id(emu: Emulator) -> None:
    answer = send(emu, prepare(emu))
    assert answer.status == 200
    assert answer.body == b""
    assert answer.headers["content-length"] == "0"
    assert re.fullmatch(r"[0-9A-F]{24}", answer.request_id)
    # http.client keeps the wire spelling; the SDK only finds the lower-case name.
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    prepared = prepare(emu)
    conn.request("POST", "/logstores/store/shards/lb", body=prepared.body, headers=prepared.headers)
    raw_names = [name for name, _ in conn.getresponse().getheaders()]
    conn.close()
    assert "x-log-requestid" in raw_names


@pytest.mark.parametrize(
    ("target", "hash_key"),
    [
        (f"/logstores/{LOGSTORE}/shards/lb", None),
        (f"/logstores/{LOGSTORE}", None),
        (f"/logstores/{LOGSTORE}/shards/route?key=user+42", "user 42"),
    ],
    ids=["lb", "bare", "route"],
)
def test_every_putlogs_path_form_is_accepted(
    emu: Emulator, target: str, hash_key: str | None
) -> None:
    prepared = prepare(emu, hash_key=hash_key)
    if hash_key is None and not target.endswith("/lb"):
        # The Go SDK's bare path: sign the request for that path by hand.
        headers, body = unsigned(raw_of(group_of("bare")))
        headers = signed_v1(headers, body, target)
        answer = send(emu, headers=headers, body=body, target=target)
    else:
        answer = send(emu, prepared, target=target)
    assert answer.status == 200, answer.body
    (summary,) = emu.requests()
    assert summary.path == target.split("?", maxsplit=1)[0]
    assert (summary.project, summary.logstore) == (PROJECT, LOGSTORE)


def test_route_query_is_form_decoded_before_verifying(emu: Emulator) -> None:
    prepared = prepare(emu, hash_key="abc def/+=")
    assert "key=abc+def%2F%2B%3D" in prepared.url
    assert send(emu, prepared).status == 200
    assert emu.requests()[0].query == "key=abc+def%2F%2B%3D"


def test_absolute_form_target_like_a_proxy_request(emu: Emulator) -> None:
    prepared = prepare(emu)
    target = f"http://{PROJECT}.sls.example.test/logstores/{LOGSTORE}/shards/lb"
    headers = dict(prepared.headers)
    answer = send(emu, headers=headers, body=prepared.body, target=target)
    assert answer.status == 200, answer.body
    assert emu.count(PROJECT, LOGSTORE) == 1


def test_project_is_the_first_host_label_with_port_stripped(open_emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")), host="other-proj.sls.example.test:8080")
    assert send(open_emu, headers=headers, body=body).status == 200
    assert open_emu.count("other-proj", LOGSTORE) == 1


def test_bare_ip_host_names_no_project(open_emu: Emulator) -> None:
    headers, body = unsigned(raw_of(group_of("x")), host=f"127.0.0.1:{open_emu.port}")
    answer = send(open_emu, headers=headers, body=body)
    assert (answer.status, answer.code) == (400, "InvalidHost")


def test_keep_alive_serves_many_requests_on_one_connection(emu: Emulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        for _ in range(5):
            answer = post_fresh(conn, emu)
            assert answer.status == 200
            assert answer.headers["connection"] == "keep-alive"
        peers = {summary.peer for summary in emu.requests()}
        assert len(peers) == 1  # one TCP connection carried all five
        # An error answer keeps the connection too.
        answer = exchange(conn, "GET", "/logstores/store/shards/lb", {"Host": "p.x"}, b"")
        assert answer.status == 405
        assert post_fresh(conn, emu).status == 200
    finally:
        conn.close()


def test_pipelined_requests_and_content_length_exactness(emu: Emulator) -> None:
    first, second = prepare(emu), prepare(emu)

    def wire(p: PreparedRequest) -> bytes:
        head = "".join(f"{k}: {v}\r\n" for k, v in p.headers.items())
        start = f"POST /logstores/store/shards/lb HTTP/1.1\r\n{head}"
        return f"{start}Content-Length: {len(p.body)}\r\n\r\n".encode() + p.body

    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(wire(first) + wire(second))
        reader = sock.makefile("rb")
        statuses = []
        for _ in range(2):
            statuses.append(reader.readline())
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
    assert statuses == [b"HTTP/1.1 200 OK\r\n"] * 2
    assert emu.count(PROJECT, LOGSTORE) == 2


@pytest.mark.parametrize("method", ["hmac-sha1", "hmac-sha256"])
def test_chunked_body_and_expect_continue(emu: Emulator, method: str) -> None:
    """No Content-Length, a chunked body (what @alicloud/gateway-sls streams), either hash."""
    prepared = prepare(emu, signature_method=method)
    headers = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
    body = prepared.body
    chunks = f"{len(body[:10]):x}\r\n".encode() + body[:10] + b"\r\n"
    chunks += f"{len(body[10:]):x}\r\n".encode() + body[10:] + b"\r\n0\r\n\r\n"
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        "POST /logstores/store/shards/lb HTTP/1.1\r\n"
        + head
        + "Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(request)
        reader = sock.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert reader.readline() == b"\r\n"
        sock.sendall(chunks)
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
    assert emu.count(PROJECT, LOGSTORE) == 1


def test_unknown_route_and_method_get_json_sls_errors(emu: Emulator) -> None:
    answer = send(emu, headers={"Host": "p.x"}, target="/", method="GET")
    assert answer.status == 404
    assert set(json.loads(answer.body)) == {"errorCode", "errorMessage"}
    assert answer.request_id
    answer = send(emu, headers={"Host": "p.x"}, target="/logstores/s/shards/lb", method="GET")
    assert (answer.status, answer.code) == (405, "InvalidParameter")


def test_malformed_request_line_gets_400_and_close(emu: Emulator) -> None:
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 400")


def test_stop_closes_idle_keepalive_connections_and_returns() -> None:
    emu = Emulator(EmulatorConfig(verify_signatures=False)).start()
    try:
        sock = socket.create_connection(("127.0.0.1", emu.port), timeout=10)
        # Make sure the server accepted it (a connection thread is parked in recv).
        sock.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 200")
        port = emu.port
        emu.stop()
        # Reading to EOF returns (bounded by the socket timeout) only because stop() closed
        # the idle keep-alive connection; the rest of the health answer comes first.
        assert reader.read().endswith(b"}")
        assert sock.recv(1) == b""
        sock.close()
        assert connect_refused(port)
    finally:
        emu.close()


def test_context_manager_and_store_readable_after_close(tmp_path: Path) -> None:
    db = str(tmp_path / "after.sqlite3")
    with Emulator(EmulatorConfig(verify_signatures=False, db_path=db)) as emu:
        headers, body = unsigned(raw_of(group_of("kept")))
        assert send(emu, headers=headers, body=body).status == 200
    # Closed: the file database is reopened read-only for reads.
    assert emu.count(PROJECT, LOGSTORE) == 1
    assert emu.logs(PROJECT, LOGSTORE)[0].get("msg") == b"kept"
    memory = Emulator(EmulatorConfig(verify_signatures=False)).start()
    memory.close()
    with pytest.raises(RuntimeError, match="memory store"):
        memory.count(PROJECT, LOGSTORE)


def test_many_concurrent_clients(emu: Emulator) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
            for _ in range(5):
                assert post_fresh(conn, emu).status == 200
            conn.close()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert emu.count(PROJECT, LOGSTORE) == 40
    assert emu.wait_for_count(PROJECT, LOGSTORE, 40, timeout=1)
