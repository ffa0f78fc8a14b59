"""What ``import yai_spool`` costs, checked by what it imports (never by a timing).

A process that only logs must not import the shipping side's libraries (httpx and what it
drags in: rich, click), the CLI's (typer, rich) or the daemon's (watchdog); ``emit`` must
never import anything on the application's thread; every name README shows must resolve.
Each check runs in a fresh interpreter, so nothing this test process imported counts.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import yai_spool
from yai_spool.testing import SLSEmulator

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("httpx", "httpcore", "rich", "typer", "click", "watchdog", "opentelemetry", "structlog")


def run_python(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON document as its last line."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


LOADED = (
    "import json, sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "def loaded():\n"
    "    return sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY))\n"
)


def test_import_yai_spool_imports_no_heavy_library() -> None:
    """``import yai_spool`` loads none of httpx, rich, typer, click, watchdog, OTel."""
    out = run_python(LOADED + "import yai_spool\nprint(json.dumps({'loaded': loaded()}))")
    assert out["loaded"] == []


def test_building_a_handler_and_logging_imports_no_heavy_library(tmp_path: Path) -> None:
    """``from yai_spool import SpoolHandler``, a handler, records: still none of them."""
    code = LOADED + (
        "import logging\n"
        "from yai_spool import SpoolHandler\n"
        "h = SpoolHandler(project='proj', logstore='store',"
        f" spool_path={str(tmp_path / 'a.spool')!r},"
        " endpoint='https://cn-hangzhou.log.aliyuncs.com', flusher='none')\n"
        "log = logging.getLogger('app'); log.addHandler(h); log.setLevel(logging.INFO)\n"
        "for i in range(10): log.info('record %d', i, extra={'n': i})\n"
        "n = h.spool.stats().ready_records\n"
        "h.close()\n"
        "print(json.dumps({'loaded': loaded(), 'ready': n}))"
    )
    out = run_python(code)
    assert out == {"loaded": [], "ready": 10}


def test_emit_never_imports_on_the_application_thread(
    tmp_path: Path, sls_emulator: SLSEmulator
) -> None:
    """The first records start the flusher; the client (httpx) is imported by the flusher.

    An import hook records the thread of every module import; the records are delivered,
    so the client was built, and no import happened on the thread that logged.
    """
    emu = sls_emulator  # the child process logs to the test kit's emulator
    code = LOADED + (
        "import logging, threading\n"
        "from yai_spool import SpoolHandler\n"
        f"h = SpoolHandler(project='proj', logstore='store', endpoint={emu.url!r},"
        f" spool_path={str(tmp_path / 'b.spool')!r}, access_key_id={emu.access_key_id!r},"
        f" access_key_secret={emu.access_key_secret!r}, linger=0)\n"
        "log = logging.getLogger('app'); log.addHandler(h); log.setLevel(logging.INFO)\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        seen.append((name, threading.current_thread() is threading.main_thread()))\n"
        "        return None\n"
        "log.info('warm-up before the hook'); h.flush()\n"
        "before = 'httpx' in sys.modules\n"
        "sys.meta_path.insert(0, Spy())\n"
        "for i in range(20):\n"
        "    try:\n"
        "        raise ValueError(i)\n"
        "    except ValueError:\n"
        "        log.exception('record %d', i, extra={'n': i, 'f': 1.5})\n"
        "main = sorted({name for name, on_main in seen if on_main})\n"
        "sys.meta_path.pop(0)\n"
        "ok = h.flush_until(30)\n"
        "h.close()\n"
        "print(json.dumps({'main': main, 'ok': ok, 'httpx_before_hook': before}))"
    )
    out = run_python(code)
    assert len(emu.wait_for(21, project="proj", logstore="store", timeout=30)) == 21
    assert out["main"] == []
    assert out["ok"] is True
    assert out["httpx_before_hook"] is True  # the warm-up's flush built the client


def test_first_emit_does_not_import_the_client_on_the_logging_thread(tmp_path: Path) -> None:
    """Before any send, the first ``emit`` starts the flusher but builds no client itself."""
    code = LOADED + (
        "import logging, threading\n"
        "from yai_spool import SpoolHandler\n"
        "seen = []\n"
        "class Spy:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if threading.current_thread() is threading.main_thread(): seen.append(name)\n"
        "        return None\n"
        # 127.0.0.1:9 (discard) refuses connections: the flusher's sends fail, emit is unaffected
        f"h = SpoolHandler(project='proj', logstore='store', endpoint='http://127.0.0.1:9',"
        f" spool_path={str(tmp_path / 'c.spool')!r}, access_key_id='AK', access_key_secret='SK')\n"
        "log = logging.getLogger('app'); log.addHandler(h); log.setLevel(logging.INFO)\n"
        "sys.meta_path.insert(0, Spy())\n"
        "log.info('the first record starts the flusher thread')\n"
        "sys.meta_path.pop(0)\n"
        "h.close_timeout = 0.1; h.close()\n"
        "print(json.dumps({'main': sorted(set(seen))}))"
    )
    assert run_python(code)["main"] == []


def test_every_public_name_resolves_and_is_listed() -> None:
    """Each name of ``__all__`` resolves lazily, is in ``dir()``, and is cached after use."""
    for name in yai_spool.__all__:
        value = getattr(yai_spool, name)
        assert value is not None, name
        assert name in dir(yai_spool)
        assert yai_spool.__dict__[name] is value  # cached: later reads skip __getattr__
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = yai_spool.no_such_name  # type: ignore[attr-defined]


def _readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_every_name_readme_imports_resolves() -> None:
    """``from yai_spool... import X`` and ``yai_spool.x.y`` in README code all resolve."""
    wanted: set[tuple[str, str]] = set()
    for block in _readme_python_blocks():
        try:
            tree = ast.parse(block)
        except SyntaxError:  # a fragment (a dictConfig excerpt): its import lines still count
            tree = ast.parse("\n".join(re.findall(r"^(?:from|import) yai_spool.*$", block, re.M)))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("yai_spool"):
                wanted.update((node.module or "", alias.name) for alias in node.names)
            elif isinstance(node, ast.Import):
                wanted.update(
                    (alias.name, "") for alias in node.names if alias.name.startswith("yai_spool")
                )
        for dotted in re.findall(r"\byai_spool(?:\.[A-Za-z_]\w*)+", block):
            module, _, attr = dotted.rpartition(".")
            wanted.add((module, attr))
    assert ("yai_spool", "SpoolHandler") in wanted
    code = (
        "import importlib, json\n"
        f"wanted = {sorted(wanted)!r}\n"
        "missing = []\n"
        "for module, attr in wanted:\n"
        "    try:\n"
        "        obj = importlib.import_module(module)\n"
        "    except ImportError:\n"
        "        parent, _, child = module.rpartition('.')\n"
        "        obj = getattr(importlib.import_module(parent), child)\n"
        "    if attr and not hasattr(obj, attr):\n"
        "        try:\n"
        "            importlib.import_module(f'{module}.{attr}')\n"
        "        except ImportError:\n"
        "            missing.append(f'{module}.{attr}')\n"
        "print(json.dumps({'missing': missing}))"
    )
    assert run_python(code)["missing"] == []
