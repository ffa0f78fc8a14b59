"""Helpers for the emulator tests: credentials, request building, raw HTTP exchanges.

Requests are built with the protocol core (``request.build_put_logs_request``,
``signing``), sent with ``http.client`` on real 127.0.0.1 sockets, and answers are parsed
into :class:`Answer`. Nothing here starts servers; fixtures in conftest.py do.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from yai_spool.emulator import Emulator
from yai_spool.sls.compression import Compression, compress
from yai_spool.sls.credentials import Credentials
from yai_spool.sls.encoding import encode_log_group
from yai_spool.sls.model import Log, LogGroup
from yai_spool.sls.request import (
    Destination,
    Endpoint,
    PreparedRequest,
    build_put_logs_request,
    build_put_logs_request_from_raw,
)
from yai_spool.sls.signing import content_md5, format_http_date, sign_v1

KEY_ID = "LTAI5tEmuKeyId"
SECRET = "EmuSecret-do-not-leak"
TMP_KEY_ID = "STS.EmuTmpKey"
TMP_SECRET = "EmuTmpSecret-do-not-leak"
TOKEN = "EmuSTSToken-do-not-leak"
CREDS = Credentials(KEY_ID, SECRET)
STS_CREDS = Credentials(TMP_KEY_ID, TMP_SECRET, TOKEN)
PROJECT = "proj"
LOGSTORE = "store"
REPO = Path(__file__).resolve().parents[2]


def group_of(
    *values: bytes | str,
    key: str = "msg",
    topic: str = "",
    source: str = "",
    tags: tuple[tuple[str, str], ...] = (),
) -> LogGroup:
    now = int(time.time())
    logs = tuple(Log(now, ((key, v),), 123) for v in values)
    return LogGroup(logs, topic=topic, source=source, tags=tags)


def prepare(
    emu: Emulator,
    group: LogGroup | None = None,
    *,
    project: str = PROJECT,
    logstore: str = LOGSTORE,
    credentials: Credentials = CREDS,
    compression: Compression = Compression.LZ4,
    signature_version: str = "v1",
    signature_method: str = "hmac-sha1",
    hash_key: str | None = None,
    now: datetime | None = None,
    raw: bytes | None = None,
) -> PreparedRequest:
    """A signed PutLogs request for ``emu`` built by the protocol core."""
    dest = Destination(Endpoint.parse(emu.url), project, logstore)
    kwargs = {
        "compression": compression,
        "signature_version": signature_version,
        "signature_method": signature_method,
        "region": "cn-hangzhou" if signature_version == "v4" else None,
        "hash_key": hash_key,
        "now": now,
    }
    if raw is not None:
        return build_put_logs_request_from_raw(dest, raw, credentials, **kwargs)  # type: ignore[arg-type]
    return build_put_logs_request(dest, group or group_of("hello"), credentials, **kwargs)  # type: ignore[arg-type]


def unsigned(
    raw: bytes,
    *,
    compression: Compression = Compression.LZ4,
    host: str = f"{PROJECT}.127.0.0.1",
    body: bytes | None = None,
    **extra: str,
) -> tuple[dict[str, str], bytes]:
    """Headers + body of an unsigned request (for emulators with verification off)."""
    wire = compress(compression, raw) if body is None else body
    headers = {
        "Host": host,
        "Content-Type": "application/x-protobuf",
        "x-log-apiversion": "0.6.0",
        "x-log-bodyrawsize": str(len(raw)),
    }
    if compression.header_value:
        headers["x-log-compresstype"] = compression.header_value
    headers.update(extra)
    return headers, wire


def signed_v1(
    headers: dict[str, str],
    body: bytes,
    path: str,
    *,
    query: dict[str, str] | None = None,
    credentials: Credentials = CREDS,
    date: datetime | None = None,
) -> dict[str, str]:
    """Sign hand-made headers with V1 (Date + Content-MD5 set here)."""
    out = dict(headers)
    out["Date"] = format_http_date(date or datetime.now(UTC))
    if body:
        out["Content-MD5"] = content_md5(body)
    sign_v1(out, credentials, "POST", path, query or {})
    return out


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        return json.loads(self.body)["errorCode"] if self.body else None

    @property
    def message(self) -> str:
        return json.loads(self.body)["errorMessage"] if self.body else ""

    @property
    def request_id(self) -> str:
        return self.headers.get("x-log-requestid", "")


def exchange(
    conn: http.client.HTTPConnection, method: str, target: str, headers: dict[str, str], body: bytes
) -> Answer:
    conn.request(method, target, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)


def send(
    emu: Emulator,
    prepared: PreparedRequest | None = None,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    target: str | None = None,
    method: str = "POST",
    conn: http.client.HTTPConnection | None = None,
    timeout: float = 10,
) -> Answer:
    """Send ``prepared`` (or raw headers/body) to ``emu`` over one HTTP/1.1 connection."""
    if prepared is not None:
        parts = urlsplit(prepared.url)
        target = target or (parts.path + (f"?{parts.query}" if parts.query else ""))
        headers, body = prepared.headers, prepared.body
    assert headers is not None
    target = target or f"/logstores/{LOGSTORE}/shards/lb"
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    try:
        return exchange(conn, method, target, headers, body)
    finally:
        if own:
            conn.close()


def connect_refused(port: int) -> bool:
    """True when nothing listens on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child python that imports this checkout (no install needed)."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in ("NO_PROXY", "HTTP_PROXY")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


PYTHON = sys.executable


def run_python(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python args...`` on this checkout to the end (``env`` on top of
    :func:`subprocess_env`); output captured as text, the exit status left to the caller."""
    return subprocess.run(
        [PYTHON, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(**env),
        check=False,
    )


def raw_of(group: LogGroup) -> bytes:
    return encode_log_group(group)
