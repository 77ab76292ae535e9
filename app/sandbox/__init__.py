"""A Dataverse-compatible Web API server for local use, demos and tests.

It stands in for Microsoft's server, so it shares no code with ``app.dataverse`` or
``app.sync``. Start with ``create_sandbox_app(SandboxConfig(...))`` or ``serve(...)``.

The parts: ``schema/`` (what is served), ``reads/`` and ``writes/`` (the Web API's
rules), and at this level the app, token endpoint, store, identity and security, service
protection limits, errors and the control API used by tests.
"""

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_sandbox_app"]
