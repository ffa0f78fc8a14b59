"""The official clients reach the emulator unmodified, through HTTP proxy mode.

How to point them at it (sls-protocol.md §1): give the client a fake ``http://`` endpoint
(``sls.example.test``) and set ``HTTP_PROXY`` to the emulator URL with ``NO_PROXY`` unset.
``requests`` (Python SDK) and ``reqwest`` (Rust producer) then send absolute-form request
lines (``POST http://proj.sls.example.test/logstores/...``) to the emulator, which takes
the project from the Host. reqwest reads ``HTTP_PROXY`` when the Producer is built (setting
``os.environ`` before that works too); the test runs it in a subprocess so the proxy
setting cannot leak into other tests.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from emulator_support import (
    KEY_ID,
    LOGSTORE,
    PROJECT,
    SECRET,
    TMP_KEY_ID,
    TMP_SECRET,
    TOKEN,
    run_python,
)

from yai_spool.emulator import Emulator

FAKE_ENDPOINT = "sls.example.test"


@pytest.fixture
def proxied(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", emu.url)
    return emu


@pytest.mark.parametrize("auth_version", ["v1", "v4"])
def test_python_sdk_put_logs(proxied: Emulator, auth_version: str) -> None:
    from aliyun.log import LogClient, LogItem, PutLogsRequest

    kwargs = {"auth_version": auth_version, "region": "cn-hangzhou"} if auth_version == "v4" else {}
    client = LogClient(FAKE_ENDPOINT, KEY_ID, SECRET, **kwargs)
    item = LogItem(timestamp=1_767_225_600, contents=[("msg", "hello"), ("bin", b"\xff\x00")])
    request = PutLogsRequest(PROJECT, LOGSTORE, "topic", "10.0.0.1", [item], hashKey="user 42")
    response = client.put_logs(request)
    assert len(response.get_request_id()) == 24
    (log,) = proxied.logs(PROJECT, LOGSTORE)
    assert log.contents == (("msg", b"hello"), ("bin", b"\xff\x00"))
    assert (log.time, log.topic, log.source) == (1_767_225_600, "topic", "10.0.0.1")
    (summary,) = proxied.requests()
    assert summary.auth_version == auth_version
    assert summary.user_agent is not None
    assert summary.user_agent.startswith("log-python-sdk")
    assert (summary.path, summary.query) == (f"/logstores/{LOGSTORE}/shards/route", "key=user+42")
    assert summary.headers["host"] == f"{PROJECT}.{FAKE_ENDPOINT}"


def test_python_sdk_with_sts_token_and_error_envelope(proxied: Emulator) -> None:
    from aliyun.log import LogClient, LogException, LogItem, PutLogsRequest

    client = LogClient(FAKE_ENDPOINT, TMP_KEY_ID, TMP_SECRET, securityToken=TOKEN)
    request = PutLogsRequest(PROJECT, LOGSTORE, "", "", [LogItem(contents=[("k", "v")])])
    client.put_logs(request)
    assert proxied.count(PROJECT, LOGSTORE) == 1
    # A 4xx is not retried by the SDK: its exception carries our code and request id.
    proxied.faults.fail_next(1, error_code="WriteQuotaExceed")
    with pytest.raises(LogException) as caught:
        client.put_logs(request)
    assert caught.value.get_error_code() == "WriteQuotaExceed"
    assert caught.value.get_request_id() == proxied.requests()[-1].request_id


PRODUCER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from aliyun_log_producer import Producer, ProducerConfig

    key_id, secret, token, project, compression = sys.argv[1:6]
    results = []
    config = ProducerConfig(
        endpoint="http://sls.example.test", access_key_id=key_id, access_key_secret=secret,
        security_token=token or None, compression=compression, linger=0.05, max_attempts=1,
    )
    with Producer(config) as producer:
        writer = producer.writer(project, "producer-store")
        for i in range(20):
            writer.send({"msg": f"m{i}"}, topic="rp", on_delivery=results.append)
        producer.flush()
    errors = [(e.kind, e.http_status, e.error_code) for e in results if e is not None]
    print(json.dumps({"delivered": sum(e is None for e in results), "errors": errors}))
    """
)


@pytest.mark.parametrize(
    ("compression", "key_id", "secret", "token"),
    [("zstd", KEY_ID, SECRET, ""), ("lz4", TMP_KEY_ID, TMP_SECRET, TOKEN)],
    ids=["zstd-v1", "lz4-sts"],
)
def test_rust_producer_in_a_subprocess(
    emu: Emulator, compression: str, key_id: str, secret: str, token: str
) -> None:
    argv = ("-c", PRODUCER_SCRIPT, key_id, secret, token, PROJECT, compression)
    result = run_python(*argv, timeout=120, HTTP_PROXY=emu.url)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report == {"delivered": 20, "errors": []}
    logs = emu.logs(PROJECT, "producer-store")
    assert sorted(log.text("msg") for log in logs) == sorted(f"m{i}" for i in range(20))
    assert all(log.topic == "rp" for log in logs)
    assert any(k == "__pack_id__" for k, _ in logs[0].tags)
    summaries = emu.requests()
    assert {s.compress_type for s in summaries} == {compression}
    assert all((s.user_agent or "").startswith("aliyun-log-python-producer/") for s in summaries)
    assert all(s.headers["host"] == f"{PROJECT}.{FAKE_ENDPOINT}" for s in summaries)
