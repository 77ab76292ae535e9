"""Certificate credentials as Microsoft Entra ID checks them: a client assertion.

The app signs a JWT with its certificate's private key and sends it as
``client_assertion`` (type ``urn:ietf:params:oauth:client-assertion-type:jwt-bearer``)
instead of a secret. It is accepted when the certificate its ``x5t`` header names (the
base64url SHA-1 thumbprint, or ``x5t#S256``) is registered on the app, the RS256 or PS256
signature verifies with that certificate's key, ``iss`` and ``sub`` are the client id,
``aud`` is this token endpoint, and ``nbf``/``exp`` hold now (five minutes of clock skew).
Refusals carry Entra's codes: 700027 key not found or bad signature, 700024 outside the
valid time range, 700021 issuer or subject is another app, 50027 malformed.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW_SECONDS = 300


@dataclass(frozen=True)
class AssertionRefused(Exception):
    code: int
    description: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_certificate(pem: str) -> x509.Certificate:
    """A certificate to register (public part only); ``ValueError`` if it is not one."""
    certificate = x509.load_pem_x509_certificate(pem.encode())
    if not isinstance(certificate.public_key(), rsa.RSAPublicKey):
        msg = "only RSA certificates can sign client assertions"
        raise ValueError(msg)
    return certificate


def thumbprints(certificate: x509.Certificate) -> tuple[str, str]:
    """(``x5t``, ``x5t#S256``) of a certificate: base64url SHA-1 and SHA-256 of its DER."""
    sha1 = certificate.fingerprint(hashes.SHA1())  # noqa: S303 - what x5t is defined as
    return _b64(sha1), _b64(certificate.fingerprint(hashes.SHA256()))


def _parts(assertion: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        head, body, signature = assertion.split(".")
        header, claims = orjson.loads(_unb64(head)), orjson.loads(_unb64(body))
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise ValueError  # noqa: TRY301 - one refusal for every malformed shape
        return header, claims, f"{head}.{body}".encode(), _unb64(signature)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise AssertionRefused(50027, "JWT token is invalid or malformed.") from None


def _find_key(
    header: dict[str, Any], registered: Iterable[str], client_id: str
) -> rsa.RSAPublicKey:
    wanted = header.get("x5t#S256") or header.get("x5t")
    index = 1 if "x5t#S256" in header else 0
    for pem in registered:
        certificate = load_certificate(pem)
        if thumbprints(certificate)[index] == wanted:
            key = certificate.public_key()
            assert isinstance(key, rsa.RSAPublicKey)  # noqa: S101 - checked on registration
            return key
    raise AssertionRefused(
        700027,
        "The certificate with identifier used to sign the client assertion is not registered "
        f"on application. [Reason - The key was not found., Thumbprint of key used by client: "
        f"'{wanted}', app Id '{client_id}']",
    )


def _verify_signature(
    header: dict[str, Any], key: rsa.RSAPublicKey, signed: bytes, sig: bytes
) -> None:
    algorithm = header.get("alg")
    if algorithm == "RS256":
        scheme: padding.AsymmetricPadding = padding.PKCS1v15()
    elif algorithm == "PS256":
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        raise AssertionRefused(
            700027, f"Client assertion algorithm {algorithm!r} is not supported."
        )
    try:
        key.verify(sig, signed, scheme, hashes.SHA256())
    except InvalidSignature:
        raise AssertionRefused(700027, "Client assertion failed signature validation.") from None


def check_assertion(
    assertion: str, *, client_id: str, token_url: str, registered: Iterable[str]
) -> None:
    """Accept the assertion or raise ``AssertionRefused`` with Entra's code and reason."""
    header, claims, signed, signature = _parts(assertion)
    _verify_signature(header, _find_key(header, registered, client_id), signed, signature)
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRefused(
            700021, "Client assertion application identifier doesn't match 'client_id' parameter."
        )
    if claims.get("aud") != token_url:
        raise AssertionRefused(
            700027, f"Client assertion audience claim does not match Realm issuer '{token_url}'."
        )
    now = time.time()
    try:
        expires, starts = float(claims["exp"]), float(claims.get("nbf", claims.get("iat", now)))
    except (KeyError, TypeError, ValueError):
        raise AssertionRefused(50027, "JWT token is invalid or malformed.") from None
    if expires < now - CLOCK_SKEW_SECONDS or starts > now + CLOCK_SKEW_SECONDS:
        raise AssertionRefused(700024, "Client assertion is not within its valid time range.")
