"""Structured logs (structlog): console for people, JSON for machines. Never log secrets."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import structlog

_SECRET_WORDS = ("password", "secret", "token", "key", "authorization")


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask text under a secret-sounding name; flags and counts (``is_key_only``,
    ``access_keys=2``) say nothing secret and stay readable."""
    for field, value in event.items():
        if field == "event" or isinstance(value, bool | int | float) or value is None:
            continue
        if any(word in field.lower() for word in _SECRET_WORDS):
            event[field] = "***"
    return event


def configure_logging(*, level: str = "INFO", fmt: str = "console") -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(),
            # Rich tracebacks render every local variable: minutes of CPU on a large one,
            # blocking the event loop. Plain ones cost microseconds.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        # filter_by_level first: a line below the level costs one isEnabledFor, not the
        # context merge, timestamp and redaction it would otherwise go through.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log prints query strings; ours logs path and status only.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("odata_query").setLevel(logging.ERROR)
    # aiosqlite logs every statement with its parameters (password hashes, key digests) at
    # DEBUG; keep it quiet even when LOG_LEVEL=DEBUG.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


@contextlib.contextmanager
def quiet_under_a_progress_bar() -> Iterator[None]:
    """While a rich progress bar draws: warnings and errors only, printed above the bar.

    At INFO every CRM request and job step writes a line, which would push the bar off
    the screen. The handler keeps the stderr it was created with, and rich swaps
    ``sys.stderr`` for a proxy that prints above the bar only while it draws.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    handlers = [h for h in root.handlers if type(h) is logging.StreamHandler]
    originals = [h.setStream(sys.stderr) for h in handlers]
    try:
        yield
    finally:
        root.setLevel(level)
        for handler, stream in zip(handlers, originals, strict=True):
            if stream is not None:
                handler.setStream(stream)
