"""The send loop: one logical request, as many attempts as the retry table allows.

Every attempt takes an in-flight slot from the adaptive limiter, then passes the Retry-After
gate at the transport, i.e. after auth and right before the bytes go out, so no request of
this client leaves while a Retry-After is pending. Answers are mapped through
``retry.STATUS_ACTIONS``; what cannot be retried becomes a typed ``DataverseError``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from app.dataverse import retry
from app.dataverse.errors import (
    AuthError,
    DataverseStatusError,
    DataverseTransportError,
    RetriableError,
)
from app.dataverse.throttle import AdaptiveLimiter, RetryAfterGate
from app.dataverse.usage import AttemptUsage, UsageObserver

log = logging.getLogger(__name__)

# Failing before the request left the machine: it certainly did not execute.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class GatedTransport(httpx.AsyncBaseTransport):
    """Waits at the Retry-After gate immediately before handing a request to the wire."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        gate: RetryAfterGate,
        observer: UsageObserver | None = None,
    ) -> None:
        self._inner = inner
        self._gate = gate
        self._observer = observer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await _timed_wait(self._gate, self._observer)
        self._wait_again_before_sending(request)
        response = await self._inner.handle_async_request(request)
        if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
            # Close the gate the moment the status line arrives: reading the body and
            # unwinding httpx take awaits, during which other requests would go out.
            seconds = retry.parse_retry_after(response.headers.get("Retry-After"))
            if seconds is not None:
                self._gate.hold_for(seconds)
        return response

    def _wait_again_before_sending(self, request: httpx.Request) -> None:
        # httpcore may park a request in its pool after the check above and send it later
        # on the very connection that just carried a 429; re-check at the last moment.
        inner_trace = request.extensions.get("trace")
        gate, observer = self._gate, self._observer

        async def trace(name: str, info: dict[str, Any]) -> None:
            if name == "http11.send_request_headers.started":
                await _timed_wait(gate, observer)
            if inner_trace is not None:
                await inner_trace(name, info)

        request.extensions["trace"] = trace

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _timed_wait(gate: RetryAfterGate, observer: UsageObserver | None) -> None:
    if observer is None or gate.remaining_seconds <= 0:
        await gate.wait()
        return
    started = time.monotonic()
    await gate.wait()
    await observer.waited(time.monotonic() - started)


@dataclass
class SendStats:
    """Counters for benchmarks, tests and the sync log."""

    requests: int = 0  # attempts that got an HTTP answer or a transport error
    throttled: int = 0  # 429 answers
    backoff_retries: int = 0  # 5xx / connection failures that were retried
    replayed_duplicates: int = 0  # replayed creates that found their own earlier row


@dataclass
class _Budget:
    """What one logical request has used so far."""

    started: float
    failures: int = 0
    throttles: int = 0
    is_ambiguous: bool = False  # some attempt may have executed on the server

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass(frozen=True)
class Exchange:
    response: httpx.Response
    after_ambiguous_attempt: bool  # an earlier attempt may have executed


class Sender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        gate: RetryAfterGate,
        limiter: AdaptiveLimiter,
        policy: retry.RetryPolicy,
        rng: random.Random | None = None,
        observer: UsageObserver | None = None,
    ) -> None:
        self.http = http
        self.gate = gate
        self.limiter = limiter
        self.policy = policy
        self.stats = SendStats()
        self.observer = observer
        self._rng = rng

    async def send(
        self,
        method: str,
        url: str,
        *,
        label: str,
        accept_multipart_error: bool = False,
        **kwargs: Any,
    ) -> Exchange:
        """Send until success, a fatal answer, or the attempt/deadline budget runs out."""
        budget = _Budget(started=time.monotonic())
        while True:
            outcome = await self._attempt(method, url, **kwargs)
            if isinstance(outcome, httpx.TransportError):
                delay = self._after_transport_error(outcome, budget, label=label)
                reason = type(outcome).__name__
            elif outcome.status_code < 400 or _is_multipart_error(
                outcome, accepted=accept_multipart_error
            ):
                return Exchange(outcome, budget.is_ambiguous)
            else:
                delay = self._after_error_status(outcome, budget, label=label)
                reason = f"HTTP {outcome.status_code}"
            if delay > 0:
                await self._back_off(label, delay, reason=reason)

    def _after_transport_error(
        self, exc: httpx.TransportError, budget: _Budget, *, label: str
    ) -> float:
        """Backoff delay before the next attempt; raises when the budget is spent."""
        budget.is_ambiguous = budget.is_ambiguous or not isinstance(exc, _NOT_SENT)
        budget.failures += 1
        decision = retry.decide_backoff(
            failed_attempts=budget.failures, elapsed_seconds=budget.elapsed, policy=self.policy,
            rng=self._rng,
        )  # fmt: skip
        if not decision.should_retry:
            raise _transport_error(exc, label=label, attempts=budget.failures)
        return decision.delay_seconds

    def _after_error_status(
        self, response: httpx.Response, budget: _Budget, *, label: str
    ) -> float:
        """Delay before the next attempt (0: the gate paces it); raises when it is final."""
        action = retry.rule_for(response.status_code).action
        if action is retry.Action.wait_retry_after:
            budget.throttles += 1
            decision = retry.decide_throttled(
                throttled_attempts=budget.throttles, elapsed_seconds=budget.elapsed,
                retry_after=self.gate.remaining_seconds, policy=self.policy,
            )  # fmt: skip
            if decision.should_retry:
                return 0.0  # the gate holds this and every other request until it passes
        elif action is retry.Action.backoff:
            budget.is_ambiguous = True
            budget.failures += 1
            decision = retry.decide_backoff(
                failed_attempts=budget.failures, elapsed_seconds=budget.elapsed,
                policy=self.policy, rng=self._rng,
            )  # fmt: skip
            if decision.should_retry:
                return decision.delay_seconds
        raise status_error(response, label=label, after_ambiguous_attempt=budget.is_ambiguous)

    async def _attempt(
        self, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | httpx.TransportError:
        async with self.limiter.slot() as epoch:
            self.stats.requests += 1
            started = time.monotonic()
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                return exc
            if self.observer is not None:
                is_throttled = response.status_code == httpx.codes.TOO_MANY_REQUESTS
                usage = AttemptUsage(seconds=time.monotonic() - started, is_throttled=is_throttled)
                await self.observer.attempt(usage)
            if response.status_code == httpx.codes.TOO_MANY_REQUESTS:
                self.stats.throttled += 1
                self._hold_gate(response)
                self.limiter.record_throttled(epoch)
            elif response.status_code < 500:
                await self.limiter.record_success()
            return response

    def _hold_gate(self, response: httpx.Response) -> None:
        """The transport already held the gate for a usable Retry-After; pace ourselves
        without one, as Microsoft's sample does."""
        seconds = retry.parse_retry_after(response.headers.get("Retry-After"))
        if seconds is None:
            seconds = retry.backoff_delay(self.stats.throttled, self.policy, rng=self._rng)
            self.gate.hold_for(seconds)
        log.info("dataverse throttled: holding all requests for %.2f s", seconds)

    async def _back_off(self, label: str, delay: float, *, reason: str) -> None:
        self.stats.backoff_retries += 1
        # DEBUG: expected and retried here; the caller logs one line if the request fails.
        log.debug("dataverse %s failed (%s); retrying in %.2f s", label, reason, delay)
        await asyncio.sleep(delay)
        if self.observer is not None:
            await self.observer.waited(delay)


def _is_multipart_error(response: httpx.Response, *, accepted: bool) -> bool:
    # A $batch without continue-on-error answers 400 with the failing part inside.
    content_type = response.headers.get("Content-Type", "")
    return accepted and content_type.lower().startswith("multipart/mixed")


def _transport_error(
    exc: httpx.TransportError, *, label: str, attempts: int
) -> DataverseTransportError:
    msg = f"{label}: no answer from Dataverse after {attempts} attempts ({type(exc).__name__})"
    error = DataverseTransportError(msg)
    error.__cause__ = exc
    return error


def status_error(
    response: httpx.Response, *, label: str, after_ambiguous_attempt: bool = False
) -> DataverseStatusError:
    """The typed exception for an error answer, with Dataverse's ``error.code``/message."""
    code, message = _error_fields(response)
    status = response.status_code
    error_class = retry.error_class_for(status, code=code, message=message)
    if error_class is AuthError:
        message = _auth_hint(status, message)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": code,
        "request_label": label,
        "after_ambiguous_attempt": after_ambiguous_attempt,
    }
    if issubclass(error_class, RetriableError):
        kwargs["retry_after_seconds"] = retry.parse_retry_after(response.headers.get("Retry-After"))
    return error_class(message, **kwargs)


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    try:
        payload = response.json()
    except ValueError:
        return "", response.text[:500] or response.reason_phrase
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return "", response.text[:500]
    return str(error.get("code") or ""), str(error.get("message") or response.reason_phrase)


def _auth_hint(status: int, message: str) -> str:
    if status == httpx.codes.UNAUTHORIZED:
        return (
            f"{message} - the access token was refused even after a fresh sign-in; check that "
            "an application user exists in Dataverse for this client id"
        )
    return f"{message} - the application user lacks a privilege; check its security roles"
