"""``python -m yai_spool.cli``: the ``yai-spool`` command line."""

from yai_spool.cli.root import main

main()
