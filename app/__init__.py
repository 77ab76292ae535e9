"""Salesbridge: the ERP side of an integration with Dynamics 365 Sales.

The domain lives in the packages (``docs/decisions.md``, "Where things are"). This level
holds the app's edges (``main``, ``service``) and the small modules every package may use
(``settings``, ``db``, ``errors``, ``logs``, ``clock``, ``exact_json``, ``file_modes``,
``ports``, ``command_lines``), plus the wiring (``catalog``): more than 15 modules, each
one concern, none of them a package's worth.
"""
