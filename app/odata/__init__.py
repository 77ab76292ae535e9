"""The item availability OData v4 web service: its own ASGI app under ``/odata``, with
HTTP Basic (user name + web service access key) or bearer auth; it knows nothing of sync.

More than 15 modules on purpose: each is one part of the protocol (paths, query options,
paging, ``$metadata``, serialization, readers, errors, the item availability entity sets),
kept small so the request path stays easy to profile; the ``$filter`` compiler's parts
are in ``filtering/`` and the BC-compatible OData V3 path in ``v3/``. ``filters`` is also
the ``$filter`` compiler the REST list endpoints and the mappings' table filters use.
"""
