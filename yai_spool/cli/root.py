"""The ``yai-spool`` command line (typer).

Owns: the top-level ``app`` and ``main()`` (the console-script entry point). Each command
group lives in its own module and is only registered here, so owners of those modules can
change their commands without touching this file.

Invariants: commands never print secrets (access key secrets, STS tokens).
"""

from __future__ import annotations

from yai_spool.cli.demo import demo
from yai_spool.cli.spool_commands import register_spool_commands
from yai_spool.daemon import run
from yai_spool.emulator.cli import command_group, emulator_app

__all__ = ["app", "main"]

app = command_group(
    "yai-spool", "Ship Python logging records to Alibaba Cloud Log Service through a SQLite spool."
)
app.add_typer(emulator_app, name="emulator")
app.command("demo")(demo)
app.command("run")(run)
register_spool_commands(app)


def main() -> None:
    """Console-script entry point (``yai-spool``)."""
    app()


if __name__ == "__main__":
    main()
