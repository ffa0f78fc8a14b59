"""How ``v1-spool.sqlite`` was made: run ONCE with yai-spool 0.1.0 (spool schema v1) importable.

The file is committed as written by that release, so the upgrade test opens a real v1 file
and never depends on today's code to fabricate one. It holds, for two destinations:

- READY records (typical mapped entries, a non-ASCII one, one with ``time_ns`` 0);
- LEASED records, leased by a flusher that was then "killed" (its lease row and the rows'
  owner token are left as a SIGKILL leaves them);
- DEAD records (dead-lettered with an SLS error code, message and request id);
- counters (delivered, dropped) and a last error.

    python tests/spool/data/make_v1_spool.py tests/spool/data/v1-spool.sqlite
"""

from __future__ import annotations

import os
import sys

from yai_spool.spool import Spool, SpoolConfig
from yai_spool.spool.destination import encode_dest


def entry(i: int, message: str | None = None) -> dict[str, object]:
    return {
        "time": 1_700_000_000 + i,
        "time_ns": (i * 7919) % 1_000_000_000,
        "contents": [
            ["message", message or f"record {i}"],
            ["levelname", "WARNING" if i % 3 == 0 else "INFO"],
            ["name", "app.billing" if i % 2 else "app.http"],
            ["order_id", f"o-{i}"],
        ],
    }


def main(path: str) -> None:
    if os.path.exists(path):
        os.unlink(path)
    a = encode_dest("proj", "store-a", "", "host-1", ())
    b = encode_dest("proj", "store-b", "topic-b", "host-1", (("env", "prod"),))
    config = SpoolConfig(integrity_check="none")
    with Spool(path, config) as spool:
        for i in range(1, 31):  # ids 1..30: dest a, except every 5th record
            spool.append(entry(i), dest=b if i % 5 == 0 else a)
        spool.append(entry(31, "héllo wörld ✓ 日本語"), dest=a)
        spool.append({**entry(32), "time_ns": 0}, dest=a)
        # Dead letters: lease 4 records of dest a, then dead-letter two of them.
        poison = spool.lease(4, 1 << 20, lease_seconds=60)
        assert poison is not None
        spool.dead_letter(
            poison.ids[:2],
            error_code="InvalidValue",
            message="value too large",
            request_id="req-dead-1",
            status=400,
        )
        spool.ack(poison.ids[2:], request_id="req-ok-1")
        spool.record_error(code="ServerBusy", message="busy", request_id="req-err", status=503)
        # A lease left behind by a killed flusher: rows LEASED, lease row present.
        orphan = spool.lease(5, 1 << 20, lease_seconds=3600)
        assert orphan is not None
        spool.checkpoint("TRUNCATE")
    # Leave the connection state as a killed process would: nothing released.
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1])
