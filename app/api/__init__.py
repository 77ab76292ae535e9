"""REST routers, one module per resource family; ``app.api.router`` assembles them.

More than 15 modules on purpose: a reader looks for a route by its resource family
(``couplings``, ``jobs``, ``ledger`` ...), and each module stays a few hundred lines of thin
handlers; request and response models live beside them in ``schemas/``.
"""
