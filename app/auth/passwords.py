"""Human passwords: argon2id with OWASP's minimum cost (keys use HMAC, see access_keys).

A verification costs tens of milliseconds of CPU. Sign-ins run it in a worker thread
(argon2 releases the GIL) behind a per-process limit of ``CHECKS_AT_ONCE``, so a flood of
guesses queues for the limit instead of stalling the event loop that serves everyone
else, OData included.
"""

from __future__ import annotations

import asyncio
import os
import weakref

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from prometheus_client import Counter

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when there is no hash to check (unknown user, key-only user), so such a
# sign-in costs the same work as a wrong password.
_DUMMY_HASH = _hasher.hash("salesbridge-no-such-user")
# Half the cores: the other half keeps serving requests while guesses are being checked.
CHECKS_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
CHECKS = Counter("salesbridge_password_checks", "argon2 password verifications run for sign-ins")
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def _slot() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slot = _slots.get(loop)
    if slot is None:
        slot = _slots[loop] = asyncio.Semaphore(CHECKS_AT_ONCE)
    return slot


async def check_password(password: str, password_hash: str | None) -> bool:
    """``verify_password`` off the event loop, at most ``CHECKS_AT_ONCE`` at a time."""
    async with _slot():
        CHECKS.inc()
        return await asyncio.to_thread(verify_password, password, password_hash)
