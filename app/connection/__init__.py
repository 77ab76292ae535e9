"""The Dynamics 365 Sales connection: its setup row, test, enable/disable, assisted setup.

Also the solution deploy (the ``nav_connection`` row and the item availability web
service user), "use default synchronization setup" (``defaults``: the default mappings and
their job queue entries), and the validation of everything an administrator types in.
This package drives the rest (enabling applies the defaults and releases held job queue
entries), so it sits just below the edges; the CRM client built from the stored setup is
``app.sync.crm_client``, which the engine and the jobs need too.
"""
