"""Web service access keys: ``sbk_<key_id>_<secret>``, stored as an HMAC-SHA256 digest.

The pepper lives in settings (outside the database). Keys are 256-bit random, so a fast
keyed hash is enough and lets every OData request verify in microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "sbk"
_KEY_PATTERN = re.compile(r"^sbk_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str
    digest: str


def digest_key(pepper: str, key: str) -> str:
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def issue_key(pepper: str) -> IssuedKey:
    key_id = "".join(
        secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")
        for _ in range(12)
    )
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return IssuedKey(key_id=key_id, key=key, digest=digest_key(pepper, key))


def parse_key_id(key: str) -> str | None:
    """The public key id of a well-formed key, or None (then it cannot be valid)."""
    match = _KEY_PATTERN.match(key)
    return match.group(1) if match else None


def key_matches(pepper: str, key: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest_key(pepper, key), stored_digest)
