"""The connection's certificate: checked and normalized on the way in, shown by its facts.

An admin gives the certificate with its private key as PEM (the key may be encrypted:
then with ``client_certificate_password``, used once and never stored) or as a base64
PKCS#12 (.pfx) file. It is checked (an RSA key of at least 2048 bits that belongs to the
certificate, not expired) and stored as PEM with an unencrypted key inside one Fernet
token. Reads show the thumbprint, subject and expiry, which are public; never the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.auth.encryption import decrypt_secret, encrypt_secret
from app.dataverse.client_assertion import CertificateError, load_client_certificate
from app.errors import InvalidInputError
from app.models.integration import ConnectionSetup
from app.settings import Settings

CERTIFICATE_FIELDS = frozenset({"client_certificate", "client_certificate_password"})


def apply_certificate_change(
    settings: Settings, setup: ConnectionSetup, *, changes: Mapping[str, Any]
) -> None:
    """Store a given certificate (checked), clear it on "", or refuse a lone password."""
    if "client_certificate" not in changes:
        if changes.get("client_certificate_password"):
            msg = "A certificate password needs the certificate (client_certificate) with it."
            raise InvalidInputError(msg)
        return
    text = changes["client_certificate"] or ""
    if not text:
        setup.client_certificate_encrypted = ""
        return
    password = changes.get("client_certificate_password") or ""
    try:
        certificate = load_client_certificate(text, password=password)
    except CertificateError as exc:
        msg = f"The client certificate cannot be used: {exc}."
        raise InvalidInputError(msg) from None
    setup.client_certificate_encrypted = encrypt_secret(settings, certificate.to_pem())


def certificate_facts(settings: Settings, ciphertext: str) -> dict[str, Any]:
    """``is_set`` and, when set, the thumbprint, subject and expiry of the stored certificate."""
    if not ciphertext:
        return {"is_set": False}
    try:
        # An expired one is still described: the expiry is what the admin needs to see.
        certificate = load_client_certificate(
            decrypt_secret(settings, ciphertext), check_expiry=False
        )
    except CertificateError:
        return {"is_set": True}
    return {
        "is_set": True,
        "thumbprint": certificate.thumbprint,
        "subject": certificate.subject,
        "expires_at": certificate.not_after,
    }
