"""Local SLS PutLogs emulator: the test bed for every client in this project.

Owns the ``yai_spool.emulator`` package:

- ``config``      ``EmulatorConfig`` (frozen, validated; every error-code choice lives here)
- ``httpserver``  a threaded HTTP/1.1 server on sockets (keep-alive, absolute-form targets,
                  down/up on the same port, prompt stop)
- ``putlogs``     the server-side PutLogs checks (routing, V1/V4/STS, body, limits)
- ``scan``        limit stats of a LogGroup without materialising it (upb when installed)
- ``faults``      scripted faults (fail, fail a fraction, poison, latency, hang, drop, down)
- ``store``       SQLite storage of accepted batches and request summaries
- ``emulator``    ``Emulator`` (wiring, control endpoint, counters) and ``serve()``
- ``cli``         the ``yai-spool emulator`` commands; ``python -m yai_spool.emulator``

Usage::

    with Emulator(EmulatorConfig(access_keys={"id": "secret"})) as emu:
        client = PutLogsClient(emu.url, access_key_id="id", access_key_secret="secret")
        client.put_logs("proj", "store", group)
        assert emu.count("proj", "store") == len(group.logs)

Pointing the official clients at it (proxy mode, sls-protocol.md §1)::

    # Python SDK: any fake http:// endpoint; requests honours HTTP_PROXY (NO_PROXY unset)
    os.environ["HTTP_PROXY"] = emu.url
    LogClient("sls.example.test", key_id, secret).put_logs(...)
    # Rust producer: reqwest reads HTTP_PROXY when the Producer is created, so set it first
    os.environ["HTTP_PROXY"] = emu.url
    Producer(ProducerConfig(endpoint="http://sls.example.test", ...))

Invariants: binds 127.0.0.1 by default, all threads are daemons, ``stop()`` is prompt, and
no secret (access key secret, STS token, signature) is printed, stored or put in a repr.
"""

from yai_spool.emulator.config import DEFAULT_RESERVED_KEYS, EmulatorConfig
from yai_spool.emulator.emulator import CONTROL_PREFIX, Counters, Emulator, serve
from yai_spool.emulator.faults import Faults, PoisonSpec
from yai_spool.emulator.store import EmulatorStore, RequestSummary, StoredLog

__all__ = [
    "CONTROL_PREFIX",
    "DEFAULT_RESERVED_KEYS",
    "Counters",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStore",
    "Faults",
    "PoisonSpec",
    "RequestSummary",
    "StoredLog",
    "serve",
]
