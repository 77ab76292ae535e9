"""Service protection limits per user, and the counters the control API exposes.

Dataverse answers 429 with ``Retry-After`` when a user exceeds the requests in a sliding
window (0x80072322) or the concurrent requests (0x80072326). The sandbox also notes every
request a user sends while a Retry-After it was given is still running ("early requests",
a client bug) and answers it 429 again; requests that arrive within
``early_grace_seconds`` of the 429 were on the wire before the client could know, and are
not counted.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from app.sandbox.config import SandboxConfig
from app.sandbox.errors import SandboxError, too_many_concurrent, too_many_requests


@dataclass
class Counters:
    total_requests: int = 0
    throttled: int = 0
    early_requests: int = 0
    faults_injected: int = 0
    errors_injected: int = 0
    drops_injected: int = 0
    unauthorized: int = 0
    max_concurrent: int = 0
    by_entity_set: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)

    def reset(self) -> None:
        self.__dict__.update(Counters().__dict__)

    def snapshot(self) -> dict[str, Any]:
        return {
            "total_requests": self.total_requests,
            "throttled": self.throttled,
            "early_requests": self.early_requests,
            "faults_injected": self.faults_injected,
            "errors_injected": self.errors_injected,
            "drops_injected": self.drops_injected,
            "unauthorized": self.unauthorized,
            "max_concurrent": self.max_concurrent,
            "by_entity_set": dict(self.by_entity_set),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
        }


@dataclass
class _UserState:
    arrivals: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    blocked_since: float = 0.0
    blocked_until: float = 0.0
    block_code: str = ""


class Protection:
    def __init__(self, config: SandboxConfig, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.users: dict[str, _UserState] = {}

    def reset(self) -> None:
        self.users.clear()

    def admit(self, user: str, now: float, *, forced: bool = False) -> SandboxError | None:
        """Check one arriving request; None = admitted (call ``release`` when it ends).

        ``forced`` answers 429 as if the window were full (fault injection)."""
        state = self.users.setdefault(user, _UserState())
        if now < state.blocked_until:
            if now >= state.blocked_since + self.config.early_grace_seconds:
                self.counters.early_requests += 1
            return self._reject(state, now, state.blocked_until, state.block_code, block=False)
        error = self._window(state, now, forced=forced) or self._concurrency(state, now)
        if error is not None:
            return error
        state.arrivals.append(now)
        state.in_flight += 1
        self.counters.max_concurrent = max(self.counters.max_concurrent, state.in_flight)
        return None

    def release(self, user: str) -> None:
        state = self.users.get(user)
        if state is not None and state.in_flight > 0:
            state.in_flight -= 1

    def _window(self, state: _UserState, now: float, *, forced: bool) -> SandboxError | None:
        limit = self.config.max_requests_per_window
        window = self.config.window_seconds
        while state.arrivals and state.arrivals[0] <= now - window:
            state.arrivals.popleft()
        if not forced and (limit is None or len(state.arrivals) < limit):
            return None
        if self.config.retry_after_seconds is not None:
            until = now + self.config.retry_after_seconds
        elif state.arrivals and limit is not None:
            until = state.arrivals[0] + window
        else:
            until = now + 1
        return self._reject(state, now, until, "0x80072322", block=True)

    def _concurrency(self, state: _UserState, now: float) -> SandboxError | None:
        limit = self.config.max_concurrent_requests
        if limit is None or state.in_flight < limit:
            return None
        until = now + (self.config.retry_after_seconds or 1)
        return self._reject(state, now, until, "0x80072326", block=True)

    def _reject(
        self, state: _UserState, now: float, until: float, code: str, *, block: bool
    ) -> SandboxError:
        retry_after = max(1, math.ceil(until - now))
        if block:
            # The block lasts exactly what the header says, so a client that waits
            # Retry-After seconds is never early.
            state.blocked_since = now
            state.blocked_until = now + retry_after
            state.block_code = code
        self.counters.throttled += 1
        if code == "0x80072326":
            return too_many_concurrent(self.config.max_concurrent_requests or 0, retry_after)
        # A forced (fault-injected) 429 with no limit configured quotes Dataverse's default.
        limit = self.config.max_requests_per_window or 6000
        return too_many_requests(limit, self.config.window_seconds, retry_after)
