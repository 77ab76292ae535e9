"""Building a client from the connection setup's values (plain arguments, not the model),
so the API's "test connection" and the sync worker make the same client the same way."""

from __future__ import annotations

from typing import Any

import httpx

from app.dataverse.client import ClientCredentials, DataverseClient
from app.dataverse.client_assertion import (
    CertificateError,
    ClientCertificate,
    load_client_certificate,
)
from app.dataverse.errors import DataverseConfigError

SUPPORTED_AUTHENTICATION_TYPES = ("oauth_client_secret", "oauth_certificate")
SUPPORTED_TYPES_HINT = (
    "use oauth_client_secret (an app registration with a client secret) or oauth_certificate "
    "(an app registration with a certificate)"
)


def client_from_connection(
    *,
    server_address: str,
    api_version: str,
    authentication_type: str,
    client_id: str,
    client_secret: str = "",
    client_certificate: str = "",
    tenant_id: str = "",
    token_url: str = "",
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> DataverseClient:
    """A ready client, or ``DataverseConfigError`` saying which setting to fix.

    ``options`` pass through to ``DataverseClient`` (timeouts, retry policy, concurrency).
    ``client_certificate`` is the PEM text of the certificate and its unencrypted key.
    On-premises modes (``ad``, ``ifd``) and the deprecated ``office365`` are refused with a
    clear message: they need NTLM/ADFS flows this client does not implement.
    """
    server = server_address.strip().rstrip("/")
    if not server.startswith(("https://", "http://")):
        msg = "the server address must be the CRM URL, e.g. https://contoso.crm4.dynamics.com"
        raise DataverseConfigError(msg)
    kind = str(authentication_type)
    if kind not in SUPPORTED_AUTHENTICATION_TYPES:
        msg = f"authentication type {kind!r} is not supported by the Dataverse client; "
        raise DataverseConfigError(msg + SUPPORTED_TYPES_HINT)
    uses_certificate = kind == "oauth_certificate"
    missing = _missing_settings(
        client_id=client_id,
        credential=("certificate", client_certificate)
        if uses_certificate
        else ("client secret", client_secret),
        has_token_source=bool(tenant_id or token_url),
    )
    if missing:
        msg = "the connection setup is missing: " + ", ".join(missing)
        raise DataverseConfigError(msg)
    credentials = ClientCredentials(
        client_id=client_id,
        client_secret="" if uses_certificate else client_secret,
        tenant_id=tenant_id,
        token_url=token_url,
        certificate=_certificate(client_certificate) if uses_certificate else None,
    )
    return DataverseClient(
        server,
        api_version=api_version or "9.2",
        credentials=credentials,
        transport=transport,
        **options,
    )


def _certificate(text: str) -> ClientCertificate:
    try:
        return load_client_certificate(text)
    except CertificateError as exc:
        msg = f"the stored certificate cannot be used: {exc}"
        raise DataverseConfigError(msg) from None


def _missing_settings(
    *, client_id: str, credential: tuple[str, str], has_token_source: bool
) -> list[str]:
    missing = [name for name, value in (("client id", client_id), credential) if not value]
    if not has_token_source:
        missing.append("tenant id or token URL")
    return missing
