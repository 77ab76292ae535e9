"""The item availability OData v4 web service: its own ASGI app under ``/odata``, with
HTTP Basic (user name + web service access key) or bearer auth; it knows nothing of sync.

More than 15 modules on purpose: each is one part of the protocol (paths, query options,
``$filter`` syntax, types, functions and comparisons, paging, ``$metadata``, serialization,
errors), kept small so the request path stays easy to profile; ``filters`` is also the
``$filter`` compiler the REST list endpoints and the mappings' table filters use.
"""
