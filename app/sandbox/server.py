"""``salesbridge sandbox``: serve the sandbox with uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig


def serve(*, host: str, port: int, db_path: Path | None) -> None:
    """Run until interrupted; ``db_path`` None keeps everything in memory."""
    app = create_sandbox_app(SandboxConfig(db_path=db_path))
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)
