"""Without OpenTelemetry installed nothing changes: same bytes, nothing imported, no error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A meta path finder that refuses every opentelemetry module: the package is "not installed".
CHILD = r"""
import json, logging, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, NotInstalled())
from yai_spool.handlers.context import ContextFilter, bind
from yai_spool.handlers.mapping import RecordMapper

log = logging.getLogger("absent")
rec = log.makeRecord("absent", logging.INFO, "absent.py", 1, "hi %s", ("x",), None,
                     extra={"order": "o-1"})
ContextFilter().filter(rec)
with bind(trace_id="bound-id"):
    plain = log.makeRecord("absent", logging.INFO, "absent.py", 1, "hi", None, None)
    on, off = RecordMapper().encode(plain), RecordMapper(otel=False).encode(plain)
    entry = RecordMapper().map(plain)
print(json.dumps({
    "same": on == off,
    "filtered_same": RecordMapper().encode(rec) == RecordMapper(otel=False).encode(rec),
    "span_attr": rec.sls_span,
    "contents": entry["contents"],
    "otel_loaded": [m for m in sys.modules if m.startswith("opentelemetry")],
}))
"""


def test_without_opentelemetry_records_are_unchanged() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["same"] is True
    assert out["filtered_same"] is True
    assert out["span_attr"] is None
    assert ["trace_id", "bound-id"] in out["contents"]
    assert not any(k in ("span_id", "trace_flags") for k, _ in out["contents"])
    assert out["otel_loaded"] == []
