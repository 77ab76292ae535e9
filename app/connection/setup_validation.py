"""Pure checks on connection settings: URLs, API versions, credentials per auth type."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.dataverse.auth import token_url_for_tenant
from app.dataverse.public_addresses import is_local_name, is_public, literal_address
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


def check_crm_url(
    value: str, *, label: str, allow_private: bool, allow_plain_http: bool = False
) -> str:
    """``check_url`` for a URL this service connects to with the CRM credentials: unless
    ``allow_private``, not a loopback, private, link-local or metadata host. (Names are
    checked again when connecting: ``app.dataverse.public_addresses``.)"""
    text = check_url(value, label=label, allow_plain_http=allow_plain_http)
    host = urlsplit(text).hostname or ""
    address = literal_address(host)
    if not allow_private and (is_local_name(host) or (address and not is_public(address))):
        msg = (
            f"The {label} {host} is a loopback, private, link-local or metadata address. "
            "Only public addresses are accepted unless the service is started with "
            "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES=true (an on-premises CRM)."
        )
        raise InvalidInputError(msg)
    return text


@dataclass(frozen=True)
class SecretDestination:
    """Where the stored CRM secrets are sent: the client secret to the token endpoint, the
    password to the CRM server, as the authentication type says."""

    crm_origin: str  # scheme://host:port of the CRM URL
    token_endpoint: str
    authentication_type: str

    @classmethod
    def of(
        cls, *, server_address: str, authentication_type: str, tenant_id: str, token_url: str
    ) -> SecretDestination:
        parts = urlsplit(server_address.strip().lower())
        origin = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}" if parts.hostname else ""
        endpoint = token_url or (token_url_for_tenant(tenant_id) if tenant_id else "")
        return cls(origin, endpoint.strip().rstrip("/").lower(), str(authentication_type))

    @classmethod
    def of_answers(cls, answers: Mapping[str, Any]) -> SecretDestination:
        """The destination the assisted setup's answers describe."""
        return cls.of(
            server_address=str(answers.get("server_address") or ""),
            authentication_type=str(answers.get("authentication_type") or "oauth_client_secret"),
            tenant_id=str(answers.get("tenant_id") or ""),
            token_url=str(answers.get("token_url") or ""),
        )

    def moved_from(self, before: SecretDestination) -> list[str]:
        """What sends the secrets somewhere new; an unset value moving to a set one is a
        first set-up, not a move."""
        pairs = (
            ("CRM URL", before.crm_origin, self.crm_origin),
            ("token URL", before.token_endpoint, self.token_endpoint),
            ("authentication type", before.authentication_type, self.authentication_type),
        )
        return [name for name, old, new in pairs if old and new != old]


def answers_move_secrets(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What in the assisted setup's answers would send the CRM secrets somewhere new."""
    return SecretDestination.of_answers(after).moved_from(SecretDestination.of_answers(before))


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
