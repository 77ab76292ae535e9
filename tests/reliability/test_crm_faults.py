"""A full sync against a CRM that throttles, fails, lags and drops connections.

The sandbox answers 429 (with Retry-After) or 503 to about 30% of Web API requests, adds
latency to every one and drops some connections after the request ran (the write landed,
the client never hears). The sync must still end with every record, none twice, and the
sandbox must count no request sent before a Retry-After it had given ran out.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from app.db import SessionMaker
from app.models.integration import ConnectionSetup
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import drive
from tests.reliability import company, consistency
from tests.reliability.conftest import (
    assert_consistent,
    counters,
    is_at_rest,
    new_seed,
    queue_full_sync,
    set_faults,
)

SIZE = company.Size(items=150, customers=30)
ROUNDS = 3  # ~50 CRM requests each: enough that every kind of fault shows up
FAULTS = {"throttle_rate": 0.15, "error_rate": 0.15, "error_statuses": [503],
          "latency_ms": 15, "drop_rate": 0.1}  # fmt: skip


@pytest.mark.slow  # Retry-After waits of a second each: ~15 s a round
async def test_full_sync_through_throttling_errors_and_drops_loses_and_doubles_nothing(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, connected: ConnectionSetup,
    tick_ctx: dict[str, Any], queue_settings: Settings,
) -> None:  # fmt: skip
    await company.seed(sessionmaker, SIZE)
    baseline = consistency.baseline_of(sandbox)
    for round_no in range(ROUNDS):
        seed = new_seed()
        print(f"CRM faults round {round_no}: seed {seed}")  # noqa: T201 - replay a round
        if round_no:
            await company.change_some(sessionmaker, random.Random(seed), new_items=20)
        await set_faults(sandbox, **FAULTS, seed=seed)
        entry_ids = await queue_full_sync(sessionmaker)
        await drive(tick_ctx, queue_settings)
        assert await is_at_rest(sessionmaker, entry_ids)
        await set_faults(sandbox, throttle_rate=0, error_rate=0, latency_ms=0, drop_rate=0)
        snap = await consistency.snapshot(sessionmaker, sandbox)
        problems = consistency.problems_at_rest(snap, baseline=baseline)
        assert_consistent(problems, f"round {round_no}, seed {seed}")

    seen = await counters(sandbox)
    print(f"CRM faults: {seen}")  # noqa: T201 - the figures in docs/reliability.md
    assert seen["early_requests"] == 0, seen
    assert seen["throttled"] > 0 and seen["errors_injected"] > 0, seen
    assert seen["drops_injected"] > 0, seen
