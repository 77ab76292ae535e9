"""Pure checks on connection settings: URLs, API versions, credentials per auth type."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from app.errors import InvalidInputError
from app.models.integration import AuthenticationType, ConnectionSetup

SUPPORTED_API_VERSIONS = ("9.0", "9.1", "9.2")
OAUTH_TYPES = (AuthenticationType.oauth_client_secret, AuthenticationType.oauth_certificate)
_SECRET_IN_CONNECTION_STRING = re.compile(r"(?i)\b(password|pwd|clientsecret|secret)\s*=")


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, label: str, allow_plain_http: bool = False) -> str:
    """A normalized http(s) URL (no trailing slash), or ``InvalidInputError`` saying why not.

    Plain http is accepted for this machine (the sandbox) and, when asked, for on-premises
    servers; anything else must use https because credentials travel to it.
    """
    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises on a bad port
    except ValueError:
        msg = f"The {label} {value[:200]!r} is not a valid URL."
        raise InvalidInputError(msg) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = (
            f"The {label} must be an http(s) URL such as https://contoso.crm4.dynamics.com, "
            f"not {value[:200]!r}."
        )
        raise InvalidInputError(msg)
    if parts.username or parts.password or parts.query or parts.fragment:
        msg = f"The {label} must not contain a user name, password, query or fragment."
        raise InvalidInputError(msg)
    if parts.scheme == "http" and not (allow_plain_http or _is_local(parts.hostname)):
        msg = f"The {label} must use https (plain http is accepted only for this machine)."
        raise InvalidInputError(msg)
    return text


def check_api_version(value: str) -> str:
    version = value.strip().lstrip("vV")
    if version not in SUPPORTED_API_VERSIONS:
        supported = ", ".join(SUPPORTED_API_VERSIONS)
        msg = f"Unsupported SDK (API) version {value[:20]!r}: use one of {supported}."
        raise InvalidInputError(msg)
    return version


def check_connection_string(value: str) -> str:
    if _SECRET_IN_CONNECTION_STRING.search(value):
        msg = (
            "Do not put secrets in the connection string: use the password field, "
            "which is stored encrypted."
        )
        raise InvalidInputError(msg)
    return value.strip()


def missing_credentials(setup: ConnectionSetup) -> list[str]:
    """What the chosen authentication type still needs (empty when complete)."""
    missing: list[str] = []
    if not setup.server_address:
        missing.append("server_address")
    if setup.authentication_type in OAUTH_TYPES:
        if not setup.client_id:
            missing.append("client_id")
        if setup.authentication_type == AuthenticationType.oauth_certificate:
            if not setup.client_certificate_encrypted:
                missing.append("client_certificate")
        elif not setup.client_secret_encrypted:
            missing.append("client_secret")
        if not (setup.tenant_id or setup.token_url):
            missing.append("tenant_id or token_url")
    else:
        if not setup.user_name:
            missing.append("user_name")
        if not setup.password_encrypted:
            missing.append("password")
    return missing


def raise_if_incomplete(setup: ConnectionSetup, *, action: str) -> None:
    missing = missing_credentials(setup)
    if missing:
        kind = str(setup.authentication_type)
        msg = f"Cannot {action}: the connection ({kind}) is missing {', '.join(missing)}."
        raise InvalidInputError(msg)
