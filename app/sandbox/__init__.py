"""A Dataverse-compatible Web API server for local use, demos and tests.

It stands in for Microsoft's server, so it shares no code with ``app.dataverse`` or
``app.sync``. Start with ``create_sandbox_app(SandboxConfig(...))`` or ``serve(...)``.

More than 15 modules and about 4,000 lines on purpose: it emulates a whole service (OAuth
token endpoint, the Web API's query language, ``$batch``, metadata, service protection
limits, the control API for tests), one concern per module; none of it is imported by
the service (an import contract says so), so its size costs the service nothing.
"""

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_sandbox_app"]
