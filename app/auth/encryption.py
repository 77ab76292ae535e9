"""Third-party secrets at rest (CRM client secret, password, the OData key handed to the CRM).

MultiFernet over ``SALESBRIDGE_ENCRYPTION_KEYS`` (comma-separated, newest first), so keys
can be rotated: old ciphertexts still decrypt, ``rotate`` re-encrypts under the newest.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.errors import SalesbridgeError
from app.settings import Settings


class SecretDecryptionError(SalesbridgeError):
    status_code = 500


def _fernet(settings: Settings) -> MultiFernet:
    keys = [k.strip() for k in settings.encryption_keys.get_secret_value().split(",") if k.strip()]
    return MultiFernet([Fernet(k) for k in keys])


def encrypt_secret(settings: Settings, plaintext: str) -> str:
    if not plaintext:
        return ""
    return _fernet(settings).encrypt(plaintext.encode()).decode()


def decrypt_secret(settings: Settings, ciphertext: str) -> str:
    if not ciphertext:
        return ""
    try:
        return _fernet(settings).decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        msg = "A stored secret cannot be decrypted: the encryption key changed. Enter it again."
        raise SecretDecryptionError(msg) from exc


def rotate_secret(settings: Settings, ciphertext: str) -> str:
    return _fernet(settings).rotate(ciphertext.encode()).decode() if ciphertext else ""


def secret_hint(ciphertext: str, settings: Settings) -> str | None:
    """What a GET may say about a secret: None when unset, else its last 4 characters."""
    if not ciphertext:
        return None
    plaintext = decrypt_secret(settings, ciphertext)
    return f"…{plaintext[-4:]}" if len(plaintext) >= 12 else "set"
