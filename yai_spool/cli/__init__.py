"""The ``yai-spool`` command line: one module per command group over shared open/render helpers.

``yai_spool.cli:main`` is the console-script entry point and ``python -m yai_spool.cli`` runs
the same app. Importing this package imports typer: nothing below the CLI layer imports it.
"""

from __future__ import annotations

from yai_spool.cli.root import app, main

__all__ = ["app", "main"]
