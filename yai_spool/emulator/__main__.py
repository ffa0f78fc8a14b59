"""``python -m yai_spool.emulator --port 0 --db FILE --access-key ID:SECRET``.

Runs ``yai-spool emulator serve`` without the console script, so a test can start the
emulator as a subprocess of ``sys.executable``; the first stdout line holds the URL.
"""

from yai_spool.emulator.cli import main

if __name__ == "__main__":
    main()
