"""The module paths of the first release, kept working after the move into layer packages.

Owns :data:`MOVED` (old dotted path -> the module that now owns it) and the import hook that
serves it: ``import yai_spool.handler`` (or a dictConfig ``class: yai_spool.handler.SpoolHandler``,
or ``mock.patch("yai_spool.flusher.X")``) gets the *same module object* as
``yai_spool.handlers.durable``, so identity, ``isinstance`` and patching behave as before.

Invariants: the hook answers only for the names in :data:`MOVED` (everything else goes to the
normal finders); it imports a target only when the old name is imported; nothing in the
package imports an old path (``tests/unit/test_imports.py`` checks both directions).
"""

from __future__ import annotations

import importlib
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

#: Old path (release 1) -> where the module lives now.
MOVED: dict[str, str] = {
    "yai_spool.aio": "yai_spool.handlers.aio",
    "yai_spool.asgi": "yai_spool.handlers.asgi",
    "yai_spool.cli_spool": "yai_spool.cli.spool_commands",
    "yai_spool.client": "yai_spool.sls.client",
    "yai_spool.compression": "yai_spool.sls.compression",
    "yai_spool.config": "yai_spool.daemon.config",
    "yai_spool.configure": "yai_spool.handlers.configure",
    "yai_spool.context": "yai_spool.handlers.context",
    "yai_spool.credentials": "yai_spool.sls.credentials",
    "yai_spool.demo": "yai_spool.cli.demo",
    "yai_spool.destination": "yai_spool.spool.destination",
    "yai_spool.encoding": "yai_spool.sls.encoding",
    "yai_spool.errors": "yai_spool.sls.errors",
    "yai_spool.flusher": "yai_spool.shipping.flusher",
    "yai_spool.handler": "yai_spool.handlers.durable",
    "yai_spool.health": "yai_spool.ops.health",
    "yai_spool.mapping": "yai_spool.handlers.mapping",
    "yai_spool.memspool": "yai_spool.spool.memory",
    "yai_spool.metrics": "yai_spool.ops.metrics",
    "yai_spool.model": "yai_spool.sls.model",
    "yai_spool.modes": "yai_spool.handlers",
    "yai_spool.modes.core": "yai_spool.handlers.core",
    "yai_spool.modes.memory": "yai_spool.handlers.memory",
    "yai_spool.modes.sync": "yai_spool.handlers.sync",
    "yai_spool.otel": "yai_spool.handlers.otel",
    "yai_spool.request": "yai_spool.sls.request",
    "yai_spool.retry": "yai_spool.shipping.retry",
    "yai_spool.signing": "yai_spool.sls.signing",
    "yai_spool.structlog": "yai_spool.handlers.structlog",
}


class _AliasLoader:
    """Loads an old path by importing the new one and handing back that very module."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module was executed by its own import."""


class MovedModuleFinder:
    """A ``sys.meta_path`` finder for the names in :data:`MOVED` only."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        is_package = new == "yai_spool.handlers"
        return ModuleSpec(fullname, _AliasLoader(new), is_package=is_package)  # type: ignore[arg-type]


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (idempotent: a re-imported package adds none)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        # First: a moved package's children (yai_spool.modes.memory) must not be found again by
        # the path finder under their old names, which would run a second copy of the module.
        sys.meta_path.insert(0, MovedModuleFinder())  # type: ignore[arg-type]
