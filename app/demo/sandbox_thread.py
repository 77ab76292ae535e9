"""The sandbox CRM served by uvicorn in a thread of the demo's process.

Its own event loop in its own thread: the sandbox's store is synchronous SQLite, which
must not stall the service's loop. The port is bound here first, so a port in use is one
clear error before anything else starts.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from app.errors import SalesbridgeError
from app.ports import bind, local_url
from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 10.0


class SandboxStartError(SalesbridgeError):
    """A demo server could not listen, or the sandbox did not start."""


@dataclass(frozen=True)
class RunningSandbox:
    config: SandboxConfig
    base_url: str
    user_id: str  # the application user the client credentials sign in as

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{self.config.tenant_id}/oauth2/v2.0/token"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/data/v{self.config.api_version}/"


@contextlib.contextmanager
def serve_sandbox(*, host: str, port: int, db_path: Path | None) -> Iterator[RunningSandbox]:
    """Serve until the block ends; ``db_path`` None keeps the CRM's data in memory."""
    config = SandboxConfig(db_path=db_path)
    app = create_sandbox_app(config)
    sock = bind(host, port, what="sandbox", option="--sandbox-port")  # before anything starts
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
    )
    # uvicorn installs no signal handlers outside the main thread: Ctrl-C reaches the service.
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sandbox", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = "The sandbox did not start; see the log lines above."
                raise SandboxStartError(msg)
            time.sleep(0.01)
        yield RunningSandbox(config, local_url(host, port), app.state.sandbox.user_id)
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT_SECONDS)
        sock.close()
