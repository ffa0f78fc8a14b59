"""The first release's module paths keep working after the move into layer packages.

A user's ``import yai_spool.handler``, a dictConfig ``class: yai_spool.modes.memory...`` or a
``mock.patch("yai_spool.flusher...")`` must reach the very module that now owns the code
(not a second copy of it), and the package itself must import only the new paths.
"""

from __future__ import annotations

import ast
import importlib
import logging
import logging.config
import sys
from pathlib import Path

import pytest

import yai_spool
from yai_spool._moved import MOVED

PACKAGE = Path(yai_spool.__file__).resolve().parent


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_path_imports_the_module_that_owns_the_code_now(old: str, new: str) -> None:
    assert importlib.import_module(old) is importlib.import_module(new)
    assert sys.modules[old] is sys.modules[new]


def test_a_child_of_a_moved_package_is_not_loaded_twice() -> None:
    from yai_spool.modes.memory import MemoryQueueHandler as old

    from yai_spool.handlers.memory import MemoryQueueHandler

    assert old is MemoryQueueHandler
    assert old.__module__ == "yai_spool.handlers.memory"


def test_a_dictconfig_class_path_of_release_one_still_builds_the_handler(tmp_path: Path) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "sls": {
                    "class": "yai_spool.handler.SpoolHandler",
                    "spool_path": str(tmp_path / "spool.db"),
                    "project": "moved-paths",
                    "logstore": "app",
                    "endpoint": "http://127.0.0.1:9",
                    "flusher": "none",
                }
            },
            "loggers": {"moved_paths": {"handlers": ["sls"], "level": "INFO"}},
        }
    )
    handler = logging.getLogger("moved_paths").handlers[0]
    try:
        from yai_spool.handlers.durable import SpoolHandler

        assert type(handler) is SpoolHandler
    finally:
        logging.getLogger("moved_paths").removeHandler(handler)
        handler.close()


def test_an_unknown_name_under_the_package_is_still_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("yai_spool.no_such_module")


def _imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_package_imports_only_the_new_paths() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        for name in _imported_names(ast.parse(path.read_text(encoding="utf-8")))
        if name in MOVED
    }
    assert offenders == set()
