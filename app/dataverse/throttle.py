"""Pacing shared by every request of one client: the Retry-After gate and adaptive concurrency.

Dataverse counts service protection limits per user, so one client (one user) keeps one gate
and one limiter for all its concurrent requests. The gate makes "never send before
Retry-After has passed" hold for the whole client, not just the request that got the 429.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

DATAVERSE_MAX_CONCURRENCY = 52  # the documented default concurrent-request limit per user


class RetryAfterGate:
    """Holds every send until the latest Retry-After deadline has passed."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._not_before = 0.0

    def hold_for(self, seconds: float) -> None:
        """Extend the hold; measured from now, i.e. after the 429 arrived, so never short."""
        self._not_before = max(self._not_before, self._clock() + seconds)

    @property
    def remaining_seconds(self) -> float:
        return max(0.0, self._not_before - self._clock())

    async def wait(self) -> None:
        # Loop: another 429 may extend the hold while we sleep, and a timer may fire a hair
        # early; the caller sends right after this returns, with no await in between.
        while (remaining := self.remaining_seconds) > 0:
            await asyncio.sleep(remaining)


_USER_GATES: weakref.WeakValueDictionary[tuple[str, str], RetryAfterGate] = (
    weakref.WeakValueDictionary()
)


def gate_for_user(server_url: str, client_id: str | None) -> RetryAfterGate:
    """The gate of one CRM user in this process, shared by all its clients.

    Concurrent sync runs each have their own client; a Retry-After one of them is told
    binds the user, so the others must wait it out as well (the sandbox counts their
    requests as early otherwise). Without a known user the client keeps its own gate.
    """
    if client_id is None:
        return RetryAfterGate()
    key = (server_url, client_id)
    gate = _USER_GATES.get(key)
    if gate is None:
        gate = RetryAfterGate()
        _USER_GATES[key] = gate
    return gate


class AdaptiveLimiter:
    """Additive-increase, multiplicative-decrease cap on requests in flight.

    Starts at ``initial``; after ``limit`` successes in a row the limit grows by one; a 429
    halves it, once per throttling episode (429s for requests sent before the last cut
    belong to the same episode and do not cut again). Never above ``maximum`` (<= 52).
    Like TCP's slow-start threshold, growing back to the level that was throttled takes
    ``probe_factor`` times as many successes, so a client does not walk into the same
    limit every few seconds (each 429 stops every request for Retry-After).
    """

    def __init__(
        self, *, initial: int = 4, maximum: int = DATAVERSE_MAX_CONCURRENCY, probe_factor: int = 8
    ) -> None:
        if not 1 <= maximum <= DATAVERSE_MAX_CONCURRENCY:
            msg = f"maximum concurrency must be between 1 and {DATAVERSE_MAX_CONCURRENCY}"
            raise ValueError(msg)
        if not 1 <= initial <= maximum:
            msg = "initial concurrency must be between 1 and the maximum"
            raise ValueError(msg)
        self.maximum = maximum
        self.limit = initial
        self.in_flight = 0
        self.peak_in_flight = 0
        self.epoch = 0  # bumped on every cut; a request remembers the epoch it was sent in
        self._successes = 0
        self._throttled_at = maximum + 1  # the limit that last drew a 429
        self._probe_factor = probe_factor
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        """Hold one in-flight slot; yields the epoch to report back on a 429."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield self.epoch
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify_all()

    async def record_success(self) -> None:
        self._successes += 1
        needed = self.limit
        if self.limit + 1 >= self._throttled_at:
            needed *= self._probe_factor  # probing the level that was throttled before
        if self._successes >= needed and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0
            async with self._changed:
                self._changed.notify_all()

    def record_throttled(self, sent_in_epoch: int) -> None:
        self._successes = 0
        if sent_in_epoch != self.epoch:
            return  # this 429 answers a request sent before the last cut
        self._throttled_at = self.limit
        self.limit = max(1, self.limit // 2)
        self.epoch += 1
