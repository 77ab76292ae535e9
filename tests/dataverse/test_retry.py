"""The status table, the backoff schedule and the retry decisions, with plain values."""

from __future__ import annotations

import random

import pytest

from app.dataverse import errors, retry
from app.dataverse.retry import Action, RetryPolicy


@pytest.mark.parametrize(
    ("status", "action", "kind", "error"),
    [
        (400, Action.fatal, errors.FailureKind.system, errors.InvalidRecordError),
        (401, Action.refresh_auth, errors.FailureKind.config, errors.AuthError),
        (403, Action.fatal, errors.FailureKind.config, errors.AuthError),
        (404, Action.fatal, errors.FailureKind.system, errors.NotFoundError),
        (412, Action.fatal, errors.FailureKind.system, errors.ConcurrencyError),
        (429, Action.wait_retry_after, errors.FailureKind.transient, errors.RetriableError),
        (500, Action.fatal, errors.FailureKind.system, errors.FatalError),
        (502, Action.backoff, errors.FailureKind.transient, errors.RetriableError),
        (503, Action.backoff, errors.FailureKind.transient, errors.RetriableError),
        (504, Action.backoff, errors.FailureKind.transient, errors.RetriableError),
        (418, Action.fatal, errors.FailureKind.system, errors.FatalError),  # unknown: fatal
    ],
)
def test_status_table(
    status: int, action: Action, kind: errors.FailureKind, error: type[Exception]
) -> None:
    rule = retry.rule_for(status)
    assert (rule.action, rule.failure_kind, rule.error) == (action, kind, error)


def test_every_retried_status_is_transient_and_every_error_class_agrees_on_kind() -> None:
    for status, rule in retry.STATUS_ACTIONS.items():
        if rule.action in (Action.backoff, Action.wait_retry_after):
            assert rule.failure_kind is errors.FailureKind.transient, status
        assert rule.error.failure_kind is rule.failure_kind or rule.error is errors.FatalError, (
            status
        )


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (412, "0x80040237", "A record with matching key values already exists.", True),
        (412, "0x80060892", "A record that has the attribute values x already exists.", True),
        (409, "", "Cannot insert duplicate key.", True),
        (412, "0x80060882", "The version of the existing record doesn't match", False),
        (404, "0x80040237", "whatever", False),  # a 404 is never a duplicate
    ],
)
def test_duplicate_key_wins_over_the_status(
    status: int, code: str, message: str, *, expected: bool
) -> None:
    found = retry.error_class_for(status, code=code, message=message)
    assert (found is errors.DuplicateRecordError) is expected
    if not expected and status == 412:
        assert found is errors.ConcurrencyError


def test_backoff_doubles_with_jitter_inside_the_ceiling() -> None:
    policy = RetryPolicy(base_delay_seconds=0.5, max_delay_seconds=8.0)
    rng = random.Random(7)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        delays = [retry.backoff_delay(attempt, policy, rng=rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len({round(d, 6) for d in delays}) > 150  # jittered, not lock step


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), (" 1.5 ", 1.5), ("0", 0.0), (None, None), ("soon", None), ("-3", None),
     ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)  # fmt: skip
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert retry.parse_retry_after(header) == expected


def test_backoff_stops_at_max_attempts_and_at_the_deadline() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay_seconds=1, deadline_seconds=10)
    rng = random.Random(1)
    assert retry.decide_backoff(failed_attempts=1, elapsed_seconds=0, policy=policy, rng=rng)
    go = retry.decide_backoff(failed_attempts=2, elapsed_seconds=0, policy=policy, rng=rng)
    assert go.should_retry and 1.0 <= go.delay_seconds <= 2.0
    stop = retry.decide_backoff(failed_attempts=3, elapsed_seconds=0, policy=policy, rng=rng)
    assert not stop.should_retry
    late = retry.decide_backoff(failed_attempts=1, elapsed_seconds=9.9, policy=policy, rng=rng)
    assert not late.should_retry


def test_throttled_retries_are_bounded_by_budget_and_deadline() -> None:
    policy = RetryPolicy(max_throttled_attempts=3, deadline_seconds=30)
    ok = retry.decide_throttled(
        throttled_attempts=2, elapsed_seconds=5, retry_after=2, policy=policy
    )
    assert ok.should_retry and ok.delay_seconds == 0  # the gate does the waiting
    spent = retry.decide_throttled(
        throttled_attempts=3, elapsed_seconds=5, retry_after=2, policy=policy
    )
    assert not spent.should_retry
    too_late = retry.decide_throttled(
        throttled_attempts=1, elapsed_seconds=29, retry_after=2, policy=policy
    )
    assert not too_late.should_retry


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="positive"):
        RetryPolicy(base_delay_seconds=2, max_delay_seconds=1)
