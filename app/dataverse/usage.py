"""What a client's requests cost against Dataverse's service protection limits.

Dataverse counts, per user and over a sliding 5-minute window, the number of requests
(6,000) and their combined execution time (1,200 s); past either it answers 429 with a
Retry-After. A ``UsageObserver`` given to ``DataverseClient(observer=...)`` is told about
every attempt that got an answer (its round-trip time, an upper bound of the server's
execution time, and whether it was a 429) and about every wait (Retry-After gate and
backoff). The client knows nothing about where the figures go.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WINDOW_SECONDS = 300
REQUESTS_PER_WINDOW = 6_000
EXECUTION_SECONDS_PER_WINDOW = 1_200


@dataclass(frozen=True)
class AttemptUsage:
    seconds: float  # request sent -> answer read
    is_throttled: bool  # answered 429


class UsageObserver(Protocol):
    async def attempt(self, usage: AttemptUsage) -> None:
        """One request that reached the server (any answer)."""

    async def waited(self, seconds: float) -> None:
        """Time one request spent held back (Retry-After or backoff) before going out."""

    async def flush(self) -> None:
        """The client is closing: hand on whatever is buffered."""
