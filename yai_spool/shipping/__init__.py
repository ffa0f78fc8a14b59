"""Shipping: from leased spool rows to acknowledged PutLogs requests.

Owns the batching plan (``cycle.ShipCycle``, sans-I/O), the one retry policy (``retry``) and
the drivers that run plans: a background thread (``thread.ThreadFlusher``) and an asyncio
task (``aio.AsyncFlusher``), with their settings and counters (``config``) and the marks that
keep the shipping path's own records out of the queues (``marks``). ``flusher`` re-exports
the public names at their historical path. Imports run down only, to
:mod:`yai_spool.spool` and :mod:`yai_spool.sls`; never to the handlers above.
"""
