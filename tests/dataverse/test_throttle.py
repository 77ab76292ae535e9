"""The Retry-After gate and the adaptive concurrency limiter, on the real event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.dataverse.throttle import AdaptiveLimiter, RetryAfterGate


async def test_gate_holds_until_the_latest_deadline() -> None:
    gate = RetryAfterGate()
    assert gate.remaining_seconds == 0
    started = time.monotonic()
    gate.hold_for(0.15)
    gate.hold_for(0.05)  # a shorter hold never shortens a longer one
    await gate.wait()
    assert time.monotonic() - started >= 0.15  # never early (a lower bound, not a speed test)
    assert gate.remaining_seconds == 0


async def test_gate_extended_while_waiting_is_honoured() -> None:
    gate = RetryAfterGate()
    gate.hold_for(0.05)
    started = time.monotonic()

    async def extend() -> None:
        await asyncio.sleep(0.02)
        gate.hold_for(0.1)  # a second 429 arrives while others wait

    await asyncio.gather(gate.wait(), extend())
    assert time.monotonic() - started >= 0.12


async def test_limiter_grows_additively_and_halves_once_per_episode() -> None:
    limiter = AdaptiveLimiter(initial=4, maximum=10)

    async def succeed(times: int) -> None:
        for _ in range(times):
            await limiter.record_success()

    await succeed(4)
    assert limiter.limit == 5  # one more after a full round of successes
    await succeed(5 + 6 + 7 + 8 + 9 + 50)
    assert limiter.limit == 10  # capped at the maximum
    epoch = limiter.epoch
    limiter.record_throttled(epoch)
    assert limiter.limit == 5
    limiter.record_throttled(epoch)  # same storm: requests sent before the cut
    assert limiter.limit == 5
    limiter.record_throttled(limiter.epoch)  # a new storm
    assert limiter.limit == 2
    for _ in range(5):
        limiter.record_throttled(limiter.epoch)
    assert limiter.limit == 1  # never below one


async def test_limiter_probes_slowly_back_to_the_throttled_level() -> None:
    limiter = AdaptiveLimiter(initial=8, maximum=52, probe_factor=8)
    limiter.record_throttled(limiter.epoch)
    assert limiter.limit == 4
    for _ in range(4 + 5 + 6):
        await limiter.record_success()
    assert limiter.limit == 7  # below the throttled level (8): one step per round
    for _ in range(7 * 8 - 1):
        await limiter.record_success()
    assert limiter.limit == 7  # growing to 8 takes eight rounds
    await limiter.record_success()
    assert limiter.limit == 8


async def test_limiter_never_lets_more_than_the_limit_in_flight() -> None:
    limiter = AdaptiveLimiter(initial=3, maximum=52)
    in_flight = 0
    peak = 0

    async def request() -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.001)
            in_flight -= 1

    await asyncio.gather(*(request() for _ in range(40)))
    assert peak == 3 == limiter.peak_in_flight


@pytest.mark.parametrize(("initial", "maximum"), [(0, 10), (5, 4), (1, 53)])
def test_limiter_refuses_bad_bounds(initial: int, maximum: int) -> None:
    with pytest.raises(ValueError, match="between"):
        AdaptiveLimiter(initial=initial, maximum=maximum)
