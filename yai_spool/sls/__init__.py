"""The SLS protocol and the PutLogs clients.

Pure modules (no I/O): ``model`` (Log, LogGroup), ``encoding`` (the LogGroup protobuf bytes),
``compression``, ``credentials``, ``signing`` (V1 and V4), ``request`` (a PutLogs request from
its parts), ``errors`` (the only module that knows SLS error codes). The clients
(``client``) add HTTP, timeouts and ``abort()`` over them. Imports: the standard library and
this package only; nothing here knows about spools, handlers or threads.
"""
