"""The real app served by uvicorn on 127.0.0.1, and a raw HTTP/1.1 client for hostile heads.

httpx refuses to send much of what these tests need (a 64 KiB query, 500 headers, a
chunked body that never ends), so ``raw_request`` writes the bytes itself and reads one
response, with a deadline: "never hangs" is part of what is tested.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp

from app.main import create_app
from app.settings import Settings

DEADLINE_SECONDS = 30.0


@contextmanager
def serve(settings: Settings, *, http: str = "httptools", port: int = 0) -> Iterator[int]:
    """The app in uvicorn on ``port`` (a free one by default), in a thread; yields the port."""
    with serve_app(create_app(settings, should_migrate=False), http=http, port=port) as bound:
        yield bound


@contextmanager
def serve_app(app: FastAPI, *, http: str = "httptools", port: int = 0) -> Iterator[int]:
    """``serve`` for an app the test keeps a handle on (its state: engine, settings).

    X-Forwarded-For is honoured from the app's SALESBRIDGE_TRUSTED_PROXIES, as in
    ``salesbridge serve``: that is how a test sends requests "from" many addresses."""
    trusted = app.state.settings.trusted_proxies.strip()
    with serve_asgi(app, http=http, trusted_proxies=trusted, port=port) as bound:
        yield bound


@contextmanager
def serve_asgi(
    app: ASGIApp, *, http: str = "httptools", trusted_proxies: str = "", port: int = 0
) -> Iterator[int]:
    """Any ASGI app in uvicorn on ``port`` of 127.0.0.1 (a free one by default), in a
    thread; yields the port."""
    trusted = trusted_proxies
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=http,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = "the app did not start in uvicorn"
            raise RuntimeError(msg)
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


async def raw_request(port: int, head: bytes, body: bytes = b"") -> RawResponse:
    """Send ``head`` (and ``body``) on a new connection; read one response or fail."""
    return await asyncio.wait_for(_exchange(port, head, body), DEADLINE_SECONDS)


async def _exchange(port: int, head: bytes, body: bytes) -> RawResponse:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        try:
            await writer.drain()
        except ConnectionError:
            pass  # the server answered and closed before taking the rest: read its answer
        status_line = await reader.readuntil(b"\r\n")
        headers: dict[str, str] = {}
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        payload = await reader.readexactly(length) if length else b""
        return RawResponse(int(status_line.split()[1]), headers, payload)
    finally:
        writer.close()


def request_head(
    method: str, target: str, headers: dict[str, str] | list[tuple[str, str]] | None = None
) -> bytes:
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
