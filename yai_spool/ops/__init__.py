"""What an operator reads: the health verdict of a spool and its Prometheus metrics.

Pure views over spool snapshots (``yai_spool.spool.SpoolStats``), shared by the CLI
(``yai-spool status``) and the daemon (``--metrics-port``), so both say the same thing.
"""
