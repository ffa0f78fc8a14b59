"""Lazy public names for a package facade (PEP 562 module ``__getattr__`` / ``__dir__``).

Owns: resolving a facade's names on first access from the module that owns each, and caching
the value in the facade's namespace so the second access is a plain attribute read.
Invariant: imports nothing but :mod:`importlib`, so a facade that uses it stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(
    facade: str, namespace: MutableMapping[str, Any], owners: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for module ``facade`` whose ``owners`` maps name -> module."""

    def __getattr__(name: str) -> Any:
        module = owners.get(name)
        if module is None:
            msg = f"module {facade!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(owners))

    return __getattr__, __dir__
