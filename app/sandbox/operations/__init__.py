"""What the Web API does with a request, as Dataverse does it: record addressing, ``$filter``,
collection reads with keyset paging, ``$expand``, ``$select`` and formatted values, bodies to
column values (binds, read-only columns, choices), create/update/upsert/delete rules,
actions, and the request/response records shared by HTTP and ``$batch``."""
