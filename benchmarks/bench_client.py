"""Throughput of the PutLogs clients against the emulator, with the official SDK as baseline.

Owns: one benchmark. The emulator runs in a *subprocess* (``python -m yai_spool.emulator``,
signatures verified, SQLite file store) so it does not share this process's GIL with the
clients. Each client sends the same payloads, lz4-compressed and V1-signed, encoding the
``LogGroup`` on every call as a flusher would:

- ``PutLogsClient``: one thread, sequential calls over one keep-alive connection;
- ``AsyncPutLogsClient``: ``--concurrency`` calls in flight on one event loop;
- ``SdkPutLogsClient`` (aliyun-log-python-sdk ``LogClient.put_logs`` through HTTP_PROXY):
  one thread, sequential; the baseline.

Payloads: a 4096-log batch (8 fields per log, ~1 MB raw) and a 1-log request. Every
(client, payload) cell is measured for ``--seconds`` per repetition; repetitions are
interleaved (client A, B, C, A, B, C, ...) so drift hits all clients alike; the median is
reported. ``cpu ms/req`` is this process's CPU time per request: the client-side cost
(encode + compress + sign + HTTP), independent of how fast the emulator is. For 4096-log
batches the emulator (which decodes every LogGroup in Python) is usually the bottleneck of
req/s; compare clients by ``cpu ms/req`` there.

Run: ``python benchmarks/bench_client.py [--seconds 1.5] [--repeat 5] [--concurrency 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import request_contents

from yai_spool.sls.client import AsyncPutLogsClient, PutLogsClient, SdkPutLogsClient
from yai_spool.sls.model import Log, LogGroup

AK, SK = "bench-key", "bench-secret"
PROJECT, LOGSTORE = "bench", "store"


def make_group(n_logs: int) -> LogGroup:
    now = int(time.time())
    logs = tuple(
        Log(
            now,
            request_contents(i),
            1 + i % 999_999_999,  # non-zero: the SDK would otherwise fill in the current ns
        )
        for i in range(n_logs)
    )
    return LogGroup(logs, topic="bench", source="10.0.0.1")


def start_emulator(db: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "yai_spool.emulator",
            "--port",
            "0",
            "--db",
            db,
            "--access-key",
            f"{AK}:{SK}",
            "--idle-timeout",
            "120",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "yai-spool emulator listening on http://127.0.0.1:PORT"
    if "listening on " not in line:
        proc.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


def give_sdk_proxy_connections_nodelay(client: SdkPutLogsClient) -> None:
    """Make the SDK baseline as fast through HTTP_PROXY as it is against a real endpoint.

    urllib3 sets TCP_NODELAY on direct connections but requests builds its proxy pool
    without socket options, so through the emulator-as-proxy each request's body (sent in a
    second write after the headers) waits for the server's delayed ACK: ~40 ms per request,
    an artefact of this test setup, not of the SDK against SLS. Measured here: 1-log
    requests go from ~22 req/s to the numbers printed.
    """
    import socket

    from requests.adapters import HTTPAdapter

    class NoDelayProxyAdapter(HTTPAdapter):
        def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
            proxy_kwargs.setdefault("socket_options", [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            return super().proxy_manager_for(proxy, **proxy_kwargs)

    client._sdk._session.mount("http://", NoDelayProxyAdapter())


def measure_sync(put: Callable[[], Any], seconds: float) -> tuple[int, float, float]:
    """Sequential calls for `seconds`: (requests, wall seconds, CPU seconds)."""
    put()  # warm: connection open, code paths hot
    count = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        put()
        count += 1
    return count, time.perf_counter() - t0, time.process_time() - cpu0


def measure_async(
    url: str, group: LogGroup, seconds: float, concurrency: int
) -> tuple[int, float, float]:
    async def run() -> tuple[int, float, float]:
        async with AsyncPutLogsClient(url, access_key_id=AK, access_key_secret=SK) as client:
            await asyncio.gather(
                *(client.put_logs(PROJECT, LOGSTORE, group) for _ in range(concurrency))
            )  # warm: open `concurrency` connections
            count = 0
            cpu0, t0 = time.process_time(), time.perf_counter()
            end = t0 + seconds

            async def worker() -> None:
                nonlocal count
                while time.perf_counter() < end:
                    await client.put_logs(PROJECT, LOGSTORE, group)
                    count += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return count, time.perf_counter() - t0, time.process_time() - cpu0

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="window per measurement")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--concurrency", type=int, default=8, help="async calls in flight")
    args = parser.parse_args()

    payloads = {"4096 logs": make_group(4096), "1 log": make_group(1)}
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_emulator(os.path.join(tmp, "bench.db"))
        # The SDK reaches the emulator as its HTTP proxy (sls-protocol.md §1).
        os.environ["HTTP_PROXY"] = url
        os.environ.pop("NO_PROXY", None)
        os.environ.pop("no_proxy", None)
        try:
            sync = PutLogsClient(url, access_key_id=AK, access_key_secret=SK)
            sdk = SdkPutLogsClient("sls.example.test", access_key_id=AK, access_key_secret=SK)
            give_sdk_proxy_connections_nodelay(sdk)
            cells: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
            names = [
                "PutLogsClient",
                f"AsyncPutLogsClient x{args.concurrency}",
                "SdkPutLogsClient (baseline)",
            ]
            for _ in range(args.repeat):
                for label, group in payloads.items():
                    for name in names:
                        if name == "PutLogsClient":
                            n, wall, cpu = measure_sync(
                                lambda g=group: sync.put_logs(PROJECT, LOGSTORE, g), args.seconds
                            )
                        elif name.startswith("Async"):
                            n, wall, cpu = measure_async(url, group, args.seconds, args.concurrency)
                        else:
                            n, wall, cpu = measure_sync(
                                lambda g=group: sdk.put_logs(PROJECT, LOGSTORE, g), args.seconds
                            )
                        rps = n / wall
                        cells.setdefault((label, name), []).append(
                            (rps, rps * len(group.logs), 1000 * cpu / n)
                        )
            sync.close()
            sdk.close()
        finally:
            proc.terminate()
            proc.wait(10)

    print(
        f"PutLogs clients vs emulator (subprocess, V1 verified, lz4); median of {args.repeat} "
        f"interleaved {args.seconds:g}s windows; Python {sys.version.split()[0]}"
    )
    header = f"{'payload':<10} {'client':<30} {'req/s':>9} {'logs/s':>11} {'cpu ms/req':>11}"
    print(header)
    print("-" * len(header))
    for (label, name), samples in cells.items():
        rps = statistics.median(s[0] for s in samples)
        lps = statistics.median(s[1] for s in samples)
        cpu = statistics.median(s[2] for s in samples)
        print(f"{label:<10} {name:<30} {rps:>9.1f} {lps:>11.0f} {cpu:>11.3f}")


if __name__ == "__main__":
    main()
