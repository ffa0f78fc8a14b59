"""Fault injection from Python and over the control endpoint, on real sockets."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from emulator_support import (
    LOGSTORE,
    PROJECT,
    Answer,
    connect_refused,
    group_of,
    prepare,
    send,
)

from yai_spool.emulator import Emulator, EmulatorConfig, StoredLog


def until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` with a deadline (for state we cannot wait on with an event)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def put(emu: Emulator, *values: str, logstore: str = LOGSTORE, timeout: float = 10) -> Answer:
    return send(
        emu, prepare(emu, group_of(*(values or ("x",))), logstore=logstore), timeout=timeout
    )


def control(emu: Emulator, path: str, payload: object | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        conn.request("GET" if body is None else "POST", f"/_emulator/{path}", body=body)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ServerBusy", 503),
        ("InternalServerError", 500),
        ("WriteQuotaExceed", 403),
        ("ShardWriteQuotaExceed", 403),
        ("Unauthorized", 401),
        ("SignatureNotMatch", 401),
        ("LogStoreNotExist", 404),
    ],
)
def test_fail_next_n_then_accept(emu: Emulator, code: str, status: int) -> None:
    emu.faults.fail_next(2, error_code=code)
    first, second, third = put(emu), put(emu), put(emu)
    assert [(a.status, a.code) for a in (first, second)] == [(status, code)] * 2
    assert first.message
    assert first.request_id
    assert third.status == 200
    assert emu.count(PROJECT, LOGSTORE) == 1
    counters = emu.counters()
    assert counters.by_outcome == {"fault": 2, "accepted": 1}
    assert counters.by_error_code == {code: 2}
    assert counters.faults_fired == {"fail": 2}
    assert emu.faults.active() == []  # a spent rule is removed


def test_explicit_status_and_message(emu: Emulator) -> None:
    emu.faults.fail_next(1, error_code="ServerBusy", status=502, message="maintenance")
    answer = put(emu)
    assert (answer.status, answer.code, answer.message) == (502, "ServerBusy", "maintenance")


def test_fail_fraction_is_seeded_and_reproducible(tmp_path: Path) -> None:
    def run() -> list[int]:
        with Emulator(EmulatorConfig(verify_signatures=False)) as emu:
            emu.faults.fail_fraction(0.5, error_code="InternalServerError", seed=42)
            return [put(emu).status for _ in range(24)]

    first, second = run(), run()
    assert first == second
    assert set(first) == {200, 500}


def test_faults_are_scoped_per_logstore_and_project(emu: Emulator) -> None:
    emu.faults.fail_next(None, error_code="WriteQuotaExceed", logstore="hot")
    emu.faults.fail_next(None, error_code="ProjectNotExist", project="elsewhere")
    assert put(emu, logstore="hot").code == "WriteQuotaExceed"
    assert put(emu, logstore="hot").code == "WriteQuotaExceed"
    assert put(emu, logstore="cold").status == 200
    assert emu.faults.active()[0]["fired"] == 2
    emu.faults.clear()
    assert put(emu, logstore="hot").status == 200


def test_poison_with_a_callable_rejects_only_matching_batches(emu: Emulator) -> None:
    seen: list[StoredLog] = []

    def poisoned(log: StoredLog) -> bool:
        seen.append(log)
        return log.get("msg") == b"POISON"

    emu.faults.poison(poisoned)
    answer = put(emu, "fine", "POISON")
    assert (answer.status, answer.code) == (400, "InvalidParameter")
    assert put(emu, "fine", "also fine").status == 200
    assert [log.text("msg") for log in emu.logs(PROJECT, LOGSTORE)] == ["fine", "also fine"]
    assert seen[0].project == PROJECT
    assert seen[0].logstore == LOGSTORE
    assert emu.requests()[0].outcome == "poisoned"


def test_poison_spec_from_json(emu: Emulator) -> None:
    status, doc = control(
        emu, "faults", {"action": "poison", "spec": {"key": "msg", "contains": "POISON"}}
    )
    assert status == 200
    assert doc["rule_ids"]
    assert put(emu, "a POISON pill").code == "InvalidParameter"
    assert put(emu, "harmless").status == 200
    assert doc["faults"][0]["spec"] == {"key": "msg", "contains": "POISON"}


def test_latency_delays_then_answers(emu: Emulator) -> None:
    emu.faults.latency(0.05, n=1)
    assert put(emu).status == 200
    assert emu.counters().faults_fired == {"latency": 1}


def test_close_mid_request_drops_the_connection_unanswered(emu: Emulator) -> None:
    emu.faults.close_mid_request(1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        put(emu)
    assert put(emu).status == 200
    outcomes = [s.outcome for s in emu.requests()]
    assert outcomes == ["dropped", "accepted"]
    assert emu.requests()[0].status is None


def test_hang_until_the_client_gives_up(emu: Emulator) -> None:
    emu.faults.hang()
    with pytest.raises(TimeoutError):
        put(emu, timeout=0.3)
    # The client closed its socket; the held request ends as "abandoned", unstored.
    assert emu.wait_for_requests(1, timeout=10)
    assert emu.requests()[0].outcome == "abandoned"
    assert emu.faults.held == 0
    assert emu.count(PROJECT, LOGSTORE) == 0


def test_hang_released_by_clear_then_processed(emu: Emulator) -> None:
    emu.faults.hang(n=1)
    result: list[Answer] = []
    worker = threading.Thread(target=lambda: result.append(put(emu)))
    worker.start()
    assert emu.faults.wait_held(1, timeout=10)
    emu.faults.clear()
    worker.join(10)
    assert result[0].status == 200
    assert emu.count(PROJECT, LOGSTORE) == 1


def start_putting(emu: Emulator, errors: list[BaseException]) -> threading.Thread:
    """A started thread sending one PutLogs (30 s timeout); connection errors go to ``errors``."""

    def client() -> None:
        try:
            put(emu, timeout=30)
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    worker = threading.Thread(target=client)
    worker.start()
    return worker


def test_hang_does_not_block_stop() -> None:
    emu = Emulator(EmulatorConfig(verify_signatures=False)).start()
    errors: list[BaseException] = []
    emu.faults.hang()
    emu.faults.latency(60, logstore="slow")
    worker = start_putting(emu, errors)
    slow = start_putting(emu, errors)
    assert emu.faults.wait_held(1, timeout=10)
    emu.stop()  # must return although a request is held and another sleeps in latency
    emu.close()
    worker.join(10)
    slow.join(10)
    assert not worker.is_alive()
    assert not slow.is_alive()
    assert len(errors) == 2


def test_latency_does_not_block_stop() -> None:
    emu = Emulator(EmulatorConfig(verify_signatures=False)).start()
    emu.faults.latency(60)
    errors: list[BaseException] = []
    worker = start_putting(emu, errors)
    assert until(lambda: emu.faults.fired().get("latency", 0) == 1)
    emu.close()
    worker.join(10)
    assert not worker.is_alive()
    assert len(errors) == 1


def test_down_refuses_then_up_serves_on_the_same_port(emu: Emulator) -> None:
    port = emu.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert put(emu).status == 200
    emu.down()
    assert not emu.is_up
    assert connect_refused(port)
    assert idle.recv(1) == b""  # open connections were dropped too
    idle.close()
    emu.up()
    assert emu.port == port
    assert put(emu).status == 200
    assert emu.count(PROJECT, LOGSTORE) == 2


def test_down_over_the_control_endpoint_with_up_after(emu: Emulator) -> None:
    port = emu.port
    status, doc = control(emu, "faults", {"action": "down", "up_after": 2.0})
    assert status == 200
    assert doc["ok"]
    assert until(lambda: not emu.is_up)
    assert connect_refused(port)
    assert until(lambda: emu.is_up)
    assert put(emu).status == 200


def test_control_endpoint_lists_clears_and_reports(emu: Emulator) -> None:
    status, doc = control(
        emu,
        "faults",
        [
            {"action": "fail_next", "n": 1, "error_code": "ServerBusy"},
            {"action": "fail_fraction", "p": 0.0, "error_code": "InternalServerError", "seed": 1},
        ],
    )
    assert status == 200
    assert len(doc["rule_ids"]) == 2
    assert put(emu).status == 503
    status, doc = control(emu, "faults")
    assert [rule["error_code"] for rule in doc["faults"]] == ["InternalServerError"]
    control(emu, "faults", {"action": "clear"})
    assert put(emu).status == 200
    status, stats = control(emu, "stats")
    assert stats["by_outcome"] == {"fault": 1, "accepted": 1}
    assert stats["by_status"] == {"503": 1, "200": 1}
    status, doc = control(emu, "faults", {"action": "explode"})
    assert status == 400
    assert "unknown fault action" in doc["errorMessage"]
    status, _ = control(emu, "clear", {})
    assert status == 200
    assert emu.count(PROJECT, LOGSTORE) == 0


def test_bad_fault_arguments_raise() -> None:
    emu = Emulator(EmulatorConfig(verify_signatures=False))
    with pytest.raises(ValueError, match="count"):
        emu.faults.fail_next(0)
    with pytest.raises(ValueError, match="probability"):
        emu.faults.fail_fraction(1.5)
    with pytest.raises(ValueError, match="exactly one"):
        emu.faults.poison({"key": "msg"})
    emu.close()
