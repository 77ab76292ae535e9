"""The URL the CRM posts its change notifications to, and whether a cloud CRM can call it.

``SALESBRIDGE_PUBLIC_URL`` + ``webhook_path``. A cloud CRM calls it from the internet, so
unless the operator allows private addresses (an on-premises CRM, the sandbox) the URL
must be given explicitly, be https on the default port (Dataverse calls webhooks on 80 and
443 only, and the key travels in a header) and name a public host: the same rules as the
CRM URL this service connects to (``setup_validation.check_crm_url``), plus a look at
what a host name resolves to. Registering a URL the CRM cannot call would only fill its
system jobs with failures; the periodic synchronization carries the changes instead.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import anyio

from app.connection.setup_validation import check_crm_url, check_url
from app.dataverse.public_addresses import is_public
from app.errors import InvalidInputError
from app.settings import Settings

LABEL = "public URL (SALESBRIDGE_PUBLIC_URL)"
DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_SECONDS = 3.0
_ALLOWANCE = (
    "or start the service with SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES=true when the CRM is "
    "on the same network"
)


def webhook_url(settings: Settings) -> str:
    return settings.public_url.rstrip("/") + settings.webhook_path


async def _resolves_privately(host: str) -> bool:
    """True when the name resolves, and only to addresses the internet cannot reach. A name
    that does not resolve here may still resolve for the CRM: it is not refused."""
    with anyio.move_on_after(RESOLVE_SECONDS):
        try:
            found = await anyio.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError:
            return False
        addresses = {ipaddress.ip_address(str(entry[4][0]).split("%", 1)[0]) for entry in found}
        return bool(addresses) and not any(is_public(a) for a in addresses)
    return False


async def unreachable_reason(settings: Settings) -> str:
    """Why the CRM could not call the webhook URL; "" when it can."""
    url = webhook_url(settings)
    if settings.allow_private_crm_addresses:
        try:
            check_url(url, label=LABEL, allow_plain_http=True)
        except InvalidInputError as exc:
            return exc.detail
        return ""
    if not settings.has_public_url:
        return (
            f"SALESBRIDGE_PUBLIC_URL is not set, so the only URL known is {url}, which a "
            "cloud CRM cannot call. Set SALESBRIDGE_PUBLIC_URL to the https address the CRM "
            f"reaches this service at, {_ALLOWANCE}."
        )
    try:
        text = check_crm_url(url, label=LABEL, allow_private=False)
    except InvalidInputError as exc:
        return f"{exc.detail} A cloud CRM calls the webhook over https at a public address."
    parts = urlsplit(text)  # https: check_crm_url allows plain http only for this machine
    if parts.port not in (None, DEFAULT_PORTS[parts.scheme]):
        return (
            f"The {LABEL} {settings.public_url} uses port {parts.port}; Dataverse calls "
            "webhooks on port 443 (https) only."
        )
    host = parts.hostname or ""
    if await _resolves_privately(host):
        return (
            f"The {LABEL} host {host} resolves only to loopback, private or link-local "
            f"addresses, which a cloud CRM cannot call: give the public address, {_ALLOWANCE}."
        )
    return ""
