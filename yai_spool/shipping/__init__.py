"""Shipping: from leased spool rows to acknowledged PutLogs requests.

Owns the batching plan (``ShipCycle``, sans-I/O), the one retry policy (``retry``) and the
drivers that run plans: a background thread and an asyncio task. Imports run down only, to
:mod:`yai_spool.spool` and :mod:`yai_spool.sls`; never to the handlers above.
"""
