"""Metadata a client discovers at start: ``EntityDefinitions`` (attributes, keys,
relationships) with ``$select``/``$filter``/``$expand``, and the message tables
``sdkmessages`` and ``sdkmessagefilters``."""
