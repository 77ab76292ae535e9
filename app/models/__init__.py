"""The tables, one module per area: ``security``, ``erp``, ``integration``, ``availability``.

Nothing is imported here, so a command that needs the users only (``salesbridge user
list``) does not build every table class first; what needs them all (Alembic's
``migrations/env.py``, the app) imports ``app.models.all_tables``.
"""
