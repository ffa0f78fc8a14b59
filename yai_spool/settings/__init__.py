"""Settings shared by the handlers and the daemon: the common tables of the one TOML file.

``fields`` reads one TOML value at a time and collects every problem of a file; ``sections``
owns ``[defaults]`` and ``[shipping]``. Imports: :mod:`yai_spool.sls` only, so both the
handlers layer and the daemon above it can use them.
"""
