"""Outbound connections to public internet addresses only (no SSRF into the local network).

The CRM URL and the token URL are typed in by an admin, and the connection test, the
solution deployment and every sync connect to them with the stored client secret. Left
open, that lets an admin (or a stolen admin token) make this service talk to its own
loopback, the private network or a cloud metadata endpoint. ``PublicAddressTransport``
resolves the host itself, refuses if any address is not public, and connects to the very
address it checked (so a DNS answer that changes between check and connect does not
matter); TLS still verifies the certificate against the host name.

``is_public`` is also what the connection setup uses to refuse literal addresses early.
An on-premises CRM on a private address needs ``SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
import httpx

from app.dataverse.errors import DataverseConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata and platform endpoints that are not in a private or link-local range
# (169.254.169.254, fd00:ec2::254 and 100.100.100.200 already are).
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("168.63.129.16")})
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
LOCAL_NAMES = ("localhost", "localhost.localdomain")


class PrivateAddressError(DataverseConfigError):
    """The host is (or resolves to) an address outbound CRM calls may not reach."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """A global unicast address that is no metadata endpoint (IPv4 inside IPv6 unwrapped)."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast and address not in METADATA_ADDRESSES


def literal_address(host: str) -> IPAddress | None:
    """The address a host name spells out, including the forms the C resolver also reads
    as IPv4 (``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``)."""
    text = host.strip("[]").split("%", 1)[0].rstrip(".")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if not text or text.strip("0123456789abcdefABCDEFxX."):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        return None


def is_local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in LOCAL_NAMES or name.endswith(".localhost")


def refusal(host: str) -> PrivateAddressError:
    return PrivateAddressError(
        f"{host} is a loopback, private, link-local or metadata address; outbound CRM "
        "connections go to public addresses only (set SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES "
        "for an on-premises CRM)"
    )


async def _resolve(host: str, port: int) -> list[str]:
    try:
        found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        msg = f"cannot resolve {host}"
        raise httpcore.ConnectError(msg) from exc
    return list(dict.fromkeys(str(entry[4][0]) for entry in found))


class PublicAddressBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only after every address checked public."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve(host, port)
        if not addresses or not all(is_public(ipaddress.ip_address(a)) for a in addresses):
            raise refusal(host)
        for address in addresses[:-1]:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next address of the host may answer
        return await self._inner.connect_tcp(
            addresses[-1], port, timeout=timeout, local_address=local_address,
            socket_options=socket_options,
        )  # fmt: skip

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        where = "a unix socket"
        raise refusal(where)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PublicAddressTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connections go through ``PublicAddressBackend``."""

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        super().__init__(limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PublicAddressBackend(),
        )
