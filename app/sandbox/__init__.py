"""A Dataverse-compatible Web API server for local use, demos and tests.

It stands in for Microsoft's server, so it shares no code with ``app.dataverse`` or
``app.sync``. Start with ``create_sandbox_app(SandboxConfig(...))`` or ``serve(...)``.
"""

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_sandbox_app"]
