"""``mypy --strict`` is clean on the layers that promise it: sls, settings and spool.

The protocol and storage layers are the ones every other layer stands on; their types are a
contract, so a regression fails the suite instead of waiting for someone to run mypy. (The
rest of the package is typed and checked without ``--strict``.) Runs mypy in a fresh process
with the project's own ``[tool.mypy]`` settings.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STRICT = ("yai_spool/sls", "yai_spool/settings", "yai_spool/spool")


def test_mypy_strict_is_clean_on_the_protocol_settings_and_storage_layers() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *STRICT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
