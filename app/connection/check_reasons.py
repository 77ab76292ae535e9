"""Why a connection test step failed, as a classified reason: never what the other side said.

The test connects to URLs an admin typed in. Echoing the answer (an error page, a JSON
body) would turn the test into a way to read other services through this one, so a
failure is described by its class, the HTTP status and, where the protocol defines a
fixed vocabulary (OAuth error codes, Dataverse's hexadecimal error codes), that code.
"""

from __future__ import annotations

import re

from app.dataverse.errors import (
    AuthError,
    DataverseError,
    DataverseProtocolError,
    DataverseStatusError,
    DataverseTransportError,
)
from app.dataverse.public_addresses import PrivateAddressError

# RFC 6749 section 5.2: the only error codes a token endpoint may answer.
OAUTH_ERRORS = frozenset({
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope",
})  # fmt: skip
_DATAVERSE_CODE = re.compile(r"^0x[0-9A-Fa-f]{8}$")
# Entra ID's numbered reasons (AADSTS700027: the certificate is not registered on the app)
# are a fixed vocabulary of digits, so the number alone is safe to pass on.
_ENTRA_CODE = re.compile(r"\bAADSTS\d{5,6}\b")
UNREACHABLE = "no answer (the host cannot be reached, refused the connection or timed out)"
NOT_DATAVERSE = "the answer is not a Dataverse Web API answer"


def _status(exc: DataverseStatusError, *, code_is_known: bool) -> str:
    return f"HTTP {exc.status_code}" + (f", {exc.code}" if code_is_known and exc.code else "")


def token_failure(exc: DataverseError, *, credential: str = "client secret") -> str:
    """The token step: the identity provider at the token URL.

    ``credential`` names what the application signs in with (``client secret`` or
    ``certificate``), so a refusal says which one to check.
    """
    if isinstance(exc, PrivateAddressError):
        return exc.message  # our own words: which rule refused the address
    if isinstance(exc, DataverseTransportError):
        return f"the token endpoint gave {UNREACHABLE}"
    if isinstance(exc, AuthError):
        status = _status(exc, code_is_known=exc.code in OAUTH_ERRORS)
        entra = _ENTRA_CODE.search(str(exc))
        if entra:
            status += f", {entra.group(0)}"
        if exc.code in ("invalid_client", "unauthorized_client"):
            if credential == "certificate":
                return (
                    "the token endpoint refused the client id or certificate: the "
                    f"certificate is not registered on the app, or it expired ({status})"
                )
            return f"the token endpoint refused the client id or client secret ({status})"
        return f"the token endpoint refused the token request ({status})"
    if isinstance(exc, DataverseProtocolError):
        return "the token endpoint's answer is not an OAuth token answer"
    return "the token request failed"


def crm_failure(exc: DataverseError) -> str:
    """The WhoAmI step: the CRM's Web API."""
    if isinstance(exc, PrivateAddressError):
        return exc.message
    if isinstance(exc, DataverseTransportError):
        return f"the CRM gave {UNREACHABLE}"
    if isinstance(exc, DataverseStatusError):
        status = _status(exc, code_is_known=bool(_DATAVERSE_CODE.match(exc.code)))
        if isinstance(exc, AuthError):
            return (
                f"the CRM refused the application's token ({status}): check that the "
                "application user exists in the CRM and has a security role"
            )
        return f"the CRM answered an error ({status})"
    if isinstance(exc, DataverseProtocolError):
        return NOT_DATAVERSE
    return "the WhoAmI request failed"
