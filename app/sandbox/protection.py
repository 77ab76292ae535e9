"""Service protection limits per user, and the counters the control API exposes.

Dataverse answers 429 with ``Retry-After`` when a user exceeds the requests in a sliding
window (0x80072322) or the concurrent requests (0x80072326). While the block runs, every
request of that user is answered 429 again.

The sandbox also counts **early requests**: requests a client sent after it was told to
wait and before the wait was over (a client bug). The count must never include a request
the client sent before it could have read the 429, so there are two rules:

- *same connection* (exact): HTTP/1.1 clients such as httpx do not pipeline, so a request
  arriving on the connection a 429 went out on was sent after the client read that 429.
  It is early if it arrives before the 429's Retry-After has run, measured from when the
  429 started going out (the client cannot have read it earlier, so it cannot be short).
- *any connection of the user* (bounded by a grace): other connections carry requests the
  client may have sent while the 429 was still on its way. A request counts only from
  ``early_grace_seconds`` after the 429 was fully written, which covers the time a request
  already sent spends in the kernel and in both event loops' queues.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from app.sandbox.config import SandboxConfig
from app.sandbox.errors import SandboxError, too_many_concurrent, too_many_requests

Connection = tuple[str, int]  # the client's host and port, from the ASGI scope
_MAX_CONNECTION_HOLDS = 1024  # per user, before expired ones are dropped


@dataclass
class Counters:
    total_requests: int = 0
    throttled: int = 0
    early_requests: int = 0
    early_same_connection: int = 0  # the exact part of early_requests
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
            "early_same_connection": self.early_same_connection,
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
    blocked_until: float = 0.0
    block_code: str = ""
    # Times a request on any connection counts as early: (known from, Retry-After end),
    # sorted and merged, one interval per run of overlapping 429s.
    known_holds: deque[tuple[float, float]] = field(default_factory=deque)
    # Connection -> end of the latest Retry-After sent on it.
    connection_holds: dict[Connection, float] = field(default_factory=dict)


class Protection:
    def __init__(self, config: SandboxConfig, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.users: dict[str, _UserState] = {}

    def reset(self) -> None:
        self.users.clear()

    def admit(
        self, user: str, now: float, *, connection: Connection | None = None, forced: bool = False
    ) -> SandboxError | None:
        """Check one arriving request; None = admitted (call ``release`` when it ends).

        ``now`` is when the request arrived; ``forced`` answers 429 as if the window were
        full (fault injection). A 429 returned here must be reported with ``sent`` once it
        has gone out, so later requests can be judged early or not."""
        state = self.users.setdefault(user, _UserState())
        self._note_early(state, now, connection)
        if now < state.blocked_until:
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

    def sent(
        self,
        user: str,
        connection: Connection | None,
        *,
        retry_after: int,
        started_at: float,
        written_at: float,
    ) -> None:
        """A 429 went out: it started being written at ``started_at`` (the client cannot
        have read it before) and was fully written at ``written_at``."""
        state = self.users.setdefault(user, _UserState())
        until = started_at + retry_after
        if connection is not None:
            by_connection = state.connection_holds
            if len(by_connection) > _MAX_CONNECTION_HOLDS:  # forget holds that are over
                by_connection = {c: u for c, u in by_connection.items() if u > started_at}
                state.connection_holds = by_connection
            by_connection[connection] = max(by_connection.get(connection, 0.0), until)
        known_from = written_at + self.config.early_grace_seconds
        if known_from >= until:
            return
        holds = state.known_holds
        if holds and known_from <= holds[-1][1]:
            holds[-1] = (holds[-1][0], max(holds[-1][1], until))
        else:
            holds.append((known_from, until))

    def _note_early(self, state: _UserState, now: float, connection: Connection | None) -> None:
        if connection is not None:
            until = state.connection_holds.get(connection)
            if until is not None and now < until:
                self.counters.early_requests += 1
                self.counters.early_same_connection += 1
                return
            if until is not None:
                del state.connection_holds[connection]
        holds = state.known_holds
        while holds and holds[0][1] <= now:
            holds.popleft()
        if any(start <= now < end for start, end in holds):
            self.counters.early_requests += 1

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
            # Retry-After seconds is never refused again.
            state.blocked_until = now + retry_after
            state.block_code = code
        self.counters.throttled += 1
        if code == "0x80072326":
            return too_many_concurrent(self.config.max_concurrent_requests or 0, retry_after)
        # A forced (fault-injected) 429 with no limit configured quotes Dataverse's default.
        limit = self.config.max_requests_per_window or 6000
        return too_many_requests(limit, self.config.window_seconds, retry_after)
