"""Salesbridge: the ERP side of an integration with Dynamics 365 Sales.

The domain lives in the packages (``docs/decisions.md``, "Where things are"). This level
holds the app's edges (``main``, ``service``) and the small modules every package may use
(``settings``, ``db``, ``errors``, ``logs``, ``clock``, ``exact_json``, ``file_modes``,
``ports``, ``command_lines``), plus the wiring (``catalog``): more than 15 modules, each
one concern, none of them a package's worth.
"""

import sys


def _import_structlog_without_rich() -> None:
    """Import structlog as if rich were not installed.

    structlog imports rich, when it can, for pretty tracebacks, which ``app.logs`` turns
    off (a rich traceback renders every local variable). That import alone cost about 3 MB
    in every process that serves; the CLI imports rich itself when it draws. Done here,
    before any module of ours imports structlog. ``None`` in ``sys.modules`` makes an
    import raise ImportError, which structlog expects when rich is absent.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()
