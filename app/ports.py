"""Listening addresses: bind before any start-up work, so a port in use is one clear line.

uvicorn would only find out after the migrations, Redis and the worker had started, and
then print its own "address already in use"; ``bind`` names the option to change.
"""

from __future__ import annotations

import errno
import socket

from app.errors import SalesbridgeError


class PortUnavailableError(SalesbridgeError):
    """The address cannot be listened on (in use, or not an address of this machine)."""


def bind(host: str, port: int, *, what: str, option: str) -> socket.socket:
    """A socket bound to the address, or one clear error naming the option to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc})"
        msg = f"The {what} port {host}:{port} {reason}: choose another with {option}."
        raise PortUnavailableError(msg) from None
    return sock


def local_url(host: str, port: int) -> str:
    """``http://host:port`` as this machine reaches it (a wildcard address via loopback)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a URL to reach it from this machine
        return f"http://127.0.0.1:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
