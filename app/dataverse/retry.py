"""What to do with each answer: the status -> action table, the backoff schedule, and the
pure decision the client's send loop follows.

Dataverse's own advice (PAD api-limits.md): on 429 wait exactly ``Retry-After`` and resend;
on transient gateway errors back off. A 429 is rejected before execution, so it is always
safe to resend; a 5xx or a dropped connection may have executed, which is why creates carry
a client-generated id and a replayed duplicate counts as success (see ``client.create``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from app.dataverse.errors import (
    AuthError,
    ConcurrencyError,
    DataverseStatusError,
    DuplicateRecordError,
    FailureKind,
    FatalError,
    InvalidRecordError,
    NotFoundError,
    RetriableError,
)


class Action(StrEnum):
    wait_retry_after = "wait_retry_after"  # 429: the shared gate holds every request
    backoff = "backoff"  # gateway trouble: exponential backoff with jitter
    refresh_auth = "refresh_auth"  # 401: the auth flow refreshes the token once, then fatal
    fatal = "fatal"  # retrying cannot help


@dataclass(frozen=True)
class StatusRule:
    action: Action
    failure_kind: FailureKind
    error: type[DataverseStatusError]


STATUS_ACTIONS: dict[int, StatusRule] = {
    400: StatusRule(Action.fatal, FailureKind.system, InvalidRecordError),
    401: StatusRule(Action.refresh_auth, FailureKind.config, AuthError),
    403: StatusRule(Action.fatal, FailureKind.config, AuthError),
    404: StatusRule(Action.fatal, FailureKind.system, NotFoundError),
    405: StatusRule(Action.fatal, FailureKind.system, FatalError),
    409: StatusRule(Action.fatal, FailureKind.system, DuplicateRecordError),
    412: StatusRule(Action.fatal, FailureKind.system, ConcurrencyError),
    413: StatusRule(Action.fatal, FailureKind.system, FatalError),
    429: StatusRule(Action.wait_retry_after, FailureKind.transient, RetriableError),
    # 500 from Dataverse is almost always a plug-in or SQL failure that recurs on replay.
    500: StatusRule(Action.fatal, FailureKind.system, FatalError),
    501: StatusRule(Action.fatal, FailureKind.system, FatalError),
    502: StatusRule(Action.backoff, FailureKind.transient, RetriableError),
    503: StatusRule(Action.backoff, FailureKind.transient, RetriableError),
    504: StatusRule(Action.backoff, FailureKind.transient, RetriableError),
}
UNKNOWN_STATUS_RULE = StatusRule(Action.fatal, FailureKind.system, FatalError)

# Dataverse error codes that mean "this key already exists" whatever the HTTP status says.
DUPLICATE_KEY_CODES = frozenset({"0x80040237", "0x80060892"})
DUPLICATE_KEY_PHRASES = ("already exists", "duplicate key", "matching key values")


def rule_for(status_code: int) -> StatusRule:
    return STATUS_ACTIONS.get(status_code, UNKNOWN_STATUS_RULE)


def error_class_for(status_code: int, *, code: str, message: str) -> type[DataverseStatusError]:
    """The exception class for an error answer; a duplicate key wins over its status."""
    if status_code in (400, 409, 412) and is_duplicate_key(code=code, message=message):
        return DuplicateRecordError
    return rule_for(status_code).error


def is_duplicate_key(*, code: str, message: str) -> bool:
    if code.lower() in DUPLICATE_KEY_CODES:
        return True
    lowered = message.lower()
    return any(phrase in lowered for phrase in DUPLICATE_KEY_PHRASES)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on one logical request, however many attempts it takes."""

    max_attempts: int = 6  # for backoff-class failures (5xx, connection errors)
    max_throttled_attempts: int = 20  # 429s only: Retry-After paces these, not us
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    deadline_seconds: float = 300.0  # total wall time for one logical request

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_throttled_attempts < 1:
            msg = "a retry policy needs at least one attempt"
            raise ValueError(msg)
        if self.base_delay_seconds <= 0 or self.max_delay_seconds < self.base_delay_seconds:
            msg = "backoff delays must be positive and max >= base"
            raise ValueError(msg)


def backoff_delay(attempt: int, policy: RetryPolicy, *, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): equal jitter on a doubling ceiling.

    Half the ceiling is fixed so a burst of failing requests never retries at once, the
    other half is random so they do not retry in lock step.
    """
    ceiling = min(policy.max_delay_seconds, policy.base_delay_seconds * 2.0 ** (attempt - 1))
    source = rng or _jitter
    return ceiling / 2 + float(source.uniform(0, ceiling / 2))


_jitter = random.Random()  # noqa: S311 - jitter, not security


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; Dataverse sends seconds (possibly fractional).

    An HTTP-date form is not used by Dataverse; it yields None and the caller falls back to
    backoff rather than guessing.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


@dataclass(frozen=True)
class Decision:
    should_retry: bool
    delay_seconds: float = 0.0  # for backoff; 429 waits are held by the shared gate


def decide_throttled(
    *, throttled_attempts: int, elapsed_seconds: float, retry_after: float, policy: RetryPolicy
) -> Decision:
    """A 429: retry after the gate releases, unless the budget or deadline would be passed."""
    if throttled_attempts >= policy.max_throttled_attempts:
        return Decision(should_retry=False)
    if elapsed_seconds + retry_after > policy.deadline_seconds:
        return Decision(should_retry=False)
    return Decision(should_retry=True)


def decide_backoff(
    *, failed_attempts: int, elapsed_seconds: float, policy: RetryPolicy, rng: random.Random | None
) -> Decision:
    """A 5xx gateway error or a connection failure: back off, within attempts and deadline."""
    if failed_attempts >= policy.max_attempts:
        return Decision(should_retry=False)
    delay = backoff_delay(failed_attempts, policy, rng=rng)
    if elapsed_seconds + delay > policy.deadline_seconds:
        return Decision(should_retry=False)
    return Decision(should_retry=True, delay_seconds=delay)
