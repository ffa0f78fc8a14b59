"""Running the official Node.js SLS clients (tests/conformance/node) from pytest.

Owns: where the Node.js side lives, why a test must skip (only two reasons: no ``node`` on
PATH, or ``node_modules`` not installed; ``.ci/run`` runs ``npm ci`` there whenever node
exists), and ``run_node``, which runs one of the scripts with a JSON document on stdin and
returns the JSON it prints.

Invariants: every run is bounded by a timeout and waited for (no process outlives a call);
a script that crashes fails the test with its stderr, never a silent skip; secrets only
travel on stdin, never on the command line (visible in ``ps``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
#: The fake endpoint domain the Node clients dial; node/resolve_test_domain.js maps it to
#: 127.0.0.1 (the clients build {project}.{endpoint} themselves and most have no proxy option).
TEST_DOMAIN = "sls.example.test"
_PACKAGES = ("@alicloud/gateway-sls", "@alicloud/sls20201230", "@alicloud/log", "aliyun-sdk")
_TIMEOUT_S = 60.0


def node_skip_reason() -> str | None:
    """Why the Node.js clients cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "Node.js is not installed (node not on PATH): the Node.js SLS clients cannot run"
    missing = [p for p in _PACKAGES if not (NODE_DIR / "node_modules" / p).is_dir()]
    if missing:
        return (
            f"Node.js packages not installed ({', '.join(missing)}): run "
            "`npm ci --ignore-scripts` in tests/conformance/node (.ci/run does)"
        )
    return None


requires_node = pytest.mark.skipif(node_skip_reason() is not None, reason=node_skip_reason() or "")


def run_node(script: str, document: Any, *, resolve_test_domain: bool = False) -> Any:
    """Run ``node/<script>`` with ``document`` as JSON on stdin; return its JSON answer.

    Raises:
        AssertionError: the script exited non-zero or printed no JSON (its stderr attached).
    """
    command = ["node"]
    if resolve_test_domain:
        command += ["--require", str(NODE_DIR / "resolve_test_domain.js")]
    command.append(str(NODE_DIR / script))
    # No proxy variables: the clients must reach the emulator only through the test domain.
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    result = subprocess.run(
        command,
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=_TIMEOUT_S,
        cwd=NODE_DIR,
        env=env,
        check=False,
    )
    assert result.returncode == 0, f"node {script} failed ({result.returncode}):\n{result.stderr}"
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(
            f"node {script} printed no JSON:\n{result.stdout}\n{result.stderr}"
        ) from None
