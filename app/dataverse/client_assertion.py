"""Certificate credentials: a client assertion signed with the certificate's private key.

Instead of a secret, Microsoft Entra ID's client-credentials grant accepts a short-lived
JWT the application signs itself (RFC 7523 client authentication), which is Entra's
recommended method between servers: nothing that works as a password ever travels.

- header: ``alg`` RS256, ``typ`` JWT, ``x5t`` = base64url of the certificate's SHA-1
  thumbprint (Entra finds the certificate registered on the app by it);
- claims: ``aud`` = the token endpoint, ``iss`` = ``sub`` = the client id, a fresh ``jti``,
  ``nbf``/``iat`` now and ``exp`` ten minutes later;
- the token request carries ``client_assertion_type`` (the jwt-bearer URN below) and
  ``client_assertion`` in place of ``client_secret``.

The certificate and key arrive as PEM (key and certificate in one text, the key optionally
encrypted) or as a base64 PKCS#12 (.pfx) file; they are kept as PEM with an unencrypted
key, which the caller stores encrypted. Nothing here logs or shows the key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import time
import uuid
from dataclasses import dataclass

import orjson
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_SECONDS = 600
MIN_KEY_BITS = 2048  # Entra refuses smaller RSA keys
_PEM_KEY = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----", re.DOTALL
)


class CertificateError(ValueError):
    """The certificate cannot be used; the message says why (never the key)."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, repr=False)
class ClientCertificate:
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def __repr__(self) -> str:
        return f"ClientCertificate(thumbprint={self.thumbprint!r})"

    @property
    def thumbprint(self) -> str:
        """SHA-1 of the DER certificate in upper-case hex, as the Entra portal shows it."""
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - x5t

    @property
    def x5t(self) -> str:
        return b64url(self.certificate.fingerprint(hashes.SHA1()))  # noqa: S303 - x5t is SHA-1

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    def to_pem(self) -> str:
        """The key (PKCS#8, unencrypted: the caller encrypts the whole text) and certificate."""
        key = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return (key + self.certificate.public_bytes(serialization.Encoding.PEM)).decode()

    def sign_assertion(self, *, token_url: str, client_id: str, now: float | None = None) -> str:
        """A client assertion for one token request at ``token_url``."""
        issued = int(time.time() if now is None else now)
        header = {"alg": "RS256", "typ": "JWT", "x5t": self.x5t}
        claims = {
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "nbf": issued,
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_SECONDS,
        }
        signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}"
        signature = self.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"


def load_client_certificate(
    text: str, *, password: str = "", check_expiry: bool = True
) -> ClientCertificate:
    """Parse and check a certificate with its private key; ``CertificateError`` says why not."""
    secret = password.encode() or None
    if "-----BEGIN" in text:
        key, certificate = _from_pem(text.encode(), secret)
    else:
        key, certificate = _from_pkcs12(text, secret)
    if not isinstance(key, rsa.RSAPrivateKey):
        msg = "the private key must be an RSA key (Microsoft Entra ID signs with RS256)"
        raise CertificateError(msg)
    if key.key_size < MIN_KEY_BITS:
        msg = f"the RSA key has {key.key_size} bits; Microsoft Entra ID needs {MIN_KEY_BITS}"
        raise CertificateError(msg)
    public = certificate.public_key()
    if not (
        isinstance(public, rsa.RSAPublicKey)
        and public.public_numbers() == key.public_key().public_numbers()
    ):
        msg = "the private key does not belong to the certificate"
        raise CertificateError(msg)
    if check_expiry and certificate.not_valid_after_utc <= dt.datetime.now(dt.UTC):
        msg = f"the certificate expired on {certificate.not_valid_after_utc:%Y-%m-%d}"
        raise CertificateError(msg)
    return ClientCertificate(key, certificate)


def _from_pem(data: bytes, password: bytes | None) -> tuple[object, x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        msg = "no PEM certificate found: give the certificate and its private key in one text"
        raise CertificateError(msg) from None
    found = _PEM_KEY.search(data)
    if found is None:
        msg = "no private key found: give the certificate and its private key in one text"
        raise CertificateError(msg)
    try:
        key = serialization.load_pem_private_key(found.group(0), password=password)
    except TypeError:
        msg = "the private key is encrypted: give its password (client_certificate_password)"
        raise CertificateError(msg) from None
    except (ValueError, UnsupportedAlgorithm):
        msg = "the private key cannot be read (a wrong password, or not a PEM private key)"
        raise CertificateError(msg) from None
    return key, certificates[0]


def _from_pkcs12(text: str, password: bytes | None) -> tuple[object, x509.Certificate]:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
        key, certificate, _chain = pkcs12.load_key_and_certificates(data, password)
    except (binascii.Error, ValueError):
        msg = (
            "the certificate is neither PEM text nor a base64 PKCS#12 (.pfx) file, or its "
            "password is wrong"
        )
        raise CertificateError(msg) from None
    if key is None or certificate is None:
        msg = "the PKCS#12 file must hold the certificate and its private key"
        raise CertificateError(msg)
    return key, certificate
