"""The emulator as a subprocess and the ``yai-spool emulator`` commands, run for real."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from emulator_support import (
    KEY_ID,
    LOGSTORE,
    PROJECT,
    PYTHON,
    SECRET,
    STS_CREDS,
    TMP_KEY_ID,
    TMP_SECRET,
    TOKEN,
    exchange,
    group_of,
    raw_of,
    run_python,
    signed_v1,
    subprocess_env,
    unsigned,
)

from yai_spool.sls.client import PutLogsClient
from yai_spool.sls.errors import SLSError

URL_LINE = re.compile(r"yai-spool emulator listening on (http://127\.0\.0\.1:\d+)\n")


@dataclass
class Served:
    proc: subprocess.Popen[str]
    url: str
    db: Path
    first_lines: list[str]


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` to completion, in the tests' environment."""
    return run_python("-m", module, *args)


def serve_refused(*args: str) -> str:
    """``python -m yai_spool.emulator ARGS`` must fail; what it printed (stdout + stderr)."""
    result = run_module("yai_spool.emulator", *args)
    assert result.returncode != 0
    return result.stdout + result.stderr


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = run_module("yai_spool.cli", "emulator", *args)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def start_server(db: Path, *extra: str) -> Served:
    proc = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "yai_spool.emulator",
            "--port",
            "0",
            "--db",
            str(db),
            "--access-key",
            f"{KEY_ID}:{SECRET}",
            "--access-key",
            f"{TMP_KEY_ID}:{TMP_SECRET}",
            "--sts-token",
            f"{TOKEN}:{TMP_KEY_ID}",
            "--max-lifetime",
            "120",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = URL_LINE.fullmatch(first)
    assert match, (first, proc.stderr.read() if proc.poll() is not None else "")
    second = proc.stdout.readline()
    return Served(proc, match.group(1), db, [first, second])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = start_server(tmp_path / "served.sqlite3")
    yield server
    if server.proc.poll() is None:
        server.proc.kill()
    server.proc.communicate(timeout=30)


def test_subprocess_server_stores_what_clients_send_and_cli_reads_it(served: Served) -> None:
    assert all(SECRET not in line and TOKEN not in line for line in served.first_lines)
    assert KEY_ID in served.first_lines[1]
    with PutLogsClient(served.url, access_key_id=KEY_ID, access_key_secret=SECRET) as client:
        client.put_logs(PROJECT, LOGSTORE, group_of("hello", b"\xff\x00raw", topic="cli"))
    with PutLogsClient(
        served.url,
        credentials_provider=None,
        access_key_id=STS_CREDS.access_key_id,
        access_key_secret=TMP_SECRET,
        security_token=TOKEN,
    ) as client:
        client.put_logs(PROJECT, "other", group_of("sts"))

    served.proc.send_signal(signal.SIGTERM)
    out, err = served.proc.communicate(timeout=30)
    assert served.proc.returncode == 0, err
    assert "stopping: signal" in out
    assert SECRET not in out + err
    assert TOKEN not in out + err

    db = str(served.db)
    assert cli("count", "--db", db, "--project", PROJECT, "--logstore", LOGSTORE).stdout == "2\n"
    per_destination = cli("count", "--db", db).stdout.splitlines()
    assert per_destination == [
        f"{PROJECT}\tother\t1 requests\t1 logs",
        f"{PROJECT}\t{LOGSTORE}\t1 requests\t2 logs",
    ]
    lines = cli(
        "dump", "--db", db, "--project", PROJECT, "--logstore", LOGSTORE, "--json"
    ).stdout.splitlines()
    docs = [json.loads(line) for line in lines]
    assert [doc["contents"] for doc in docs] == [
        [["msg", "hello"]],
        [["msg", {"base64": "/wByYXc="}]],
    ]
    assert docs[0]["topic"] == "cli"
    assert len(docs[0]["request_id"]) == 24
    text = cli("dump", "--db", db, "--project", PROJECT, "--logstore", LOGSTORE).stdout
    assert "msg=hello" in text
    assert "msg=\\xff\\x00raw" in text
    assert "__topic__=cli" in text
    requests = cli("requests", "--db", db).stdout
    assert requests.count(" 200 - accepted") == 2
    assert SECRET not in requests
    as_json = [
        json.loads(line) for line in cli("requests", "--db", db, "--json").stdout.splitlines()
    ]
    assert {doc["access_key_id"] for doc in as_json} == {KEY_ID, TMP_KEY_ID}


def test_fault_and_stats_commands_drive_a_running_server(served: Served) -> None:
    client = PutLogsClient(served.url, access_key_id=KEY_ID, access_key_secret=SECRET)
    with client:
        out = cli(
            "fault", "--url", served.url, "fail-next", "--n", "1", "--code", "WriteQuotaExceed"
        ).stdout
        assert json.loads(out)["faults"][0]["error_code"] == "WriteQuotaExceed"
        with pytest.raises(SLSError) as caught:
            client.put_logs(PROJECT, LOGSTORE, group_of("x"))
        assert (caught.value.status, caught.value.error_code) == (403, "WriteQuotaExceed")
        client.put_logs(PROJECT, LOGSTORE, group_of("x"))

        cli("fault", "--url", served.url, "poison", "--key", "msg", "--contains", "POISON")
        with pytest.raises(SLSError) as caught:
            client.put_logs(PROJECT, LOGSTORE, group_of("POISON"))
        assert caught.value.error_code == "InvalidParameter"
        listed = json.loads(cli("fault", "--url", served.url, "list").stdout)
        assert listed["faults"][0]["kind"] == "poison"
        cli("fault", "--url", served.url, "clear")
        client.put_logs(PROJECT, LOGSTORE, group_of("POISON"))

        stats = json.loads(cli("stats", "--url", served.url).stdout)
        assert stats["by_outcome"] == {"fault": 1, "accepted": 2, "poisoned": 1}
        assert stats["accepted_logs"] == 2

        bad = cli("fault", "--url", served.url, "explode", check=False)
        assert bad.returncode != 0


def test_idle_timeout_stops_the_subprocess(tmp_path: Path) -> None:
    server = start_server(tmp_path / "idle.sqlite3", "--idle-timeout", "0.5")
    out, _ = server.proc.communicate(timeout=60)
    assert server.proc.returncode == 0
    assert "stopping: idle timeout" in out


def test_cli_errors_never_echo_secrets(tmp_path: Path) -> None:
    printed = serve_refused("--access-key", "no-colon-secret-value")
    assert "no-colon-secret-value" not in printed
    assert "ID:SECRET" in printed
    missing = cli("count", "--db", str(tmp_path / "absent.sqlite3"), check=False)
    assert missing.returncode == 2
    assert "no emulator database" in missing.stderr


def test_serve_options_for_content_type_gzip_and_meta_headers(tmp_path: Path) -> None:
    server = start_server(
        tmp_path / "opts.sqlite3",
        "--missing-content-type",
        "accept",
        "--gzip",
        "reject",
        "--meta-headers",
        "unsigned",
    )
    try:
        port = int(server.url.rsplit(":", 1)[1])
        path = f"/logstores/{LOGSTORE}/shards/lb"
        raw = raw_of(group_of("served"))

        def post(headers: dict[str, str], body: bytes) -> tuple[int, str | None]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                answer = exchange(conn, "POST", path, signed_v1(headers, body, path), body)
            finally:
                conn.close()
            return answer.status, answer.code

        headers, body = unsigned(raw)
        del headers["Content-Type"]
        assert post(headers, body) == (200, None)  # --missing-content-type accept
        headers, _ = unsigned(raw, **{"x-log-compresstype": "gzip"})
        assert post(headers, zlib.compress(raw)) == (400, "InvalidCompressType")  # --gzip reject
        with PutLogsClient(
            server.url,
            access_key_id=KEY_ID,
            access_key_secret=SECRET,
            signature_method="hmac-sha256",
        ) as client:
            assert len(client.put_logs(PROJECT, LOGSTORE, group_of("sha256")).request_id) == 24
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.communicate(timeout=30)
    assert server.proc.returncode == 0
    assert "gzip_compress_type" in serve_refused("--gzip", "maybe")
