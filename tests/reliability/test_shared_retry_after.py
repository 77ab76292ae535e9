"""Two clients of one CRM user in one process (two sync runs at once) share the user's
Retry-After: after one of them is told to wait, the other sends nothing early either."""

from __future__ import annotations

import asyncio

import httpx

from tests.fixtures.sandbox import RunningSandbox
from tests.sync.conftest import sandbox_client


async def test_a_retry_after_told_to_one_client_holds_the_other(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as control:
        limits = {"max_requests_per_window": 3, "window_seconds": 1, "retry_after_seconds": 1,
                  "early_grace_seconds": 0}  # fmt: skip
        (await control.put(f"{sandbox.control_url}/limits", json=limits)).raise_for_status()
    async with sandbox_client(sandbox) as first, sandbox_client(sandbox) as second:
        for _ in range(3):
            await first.whoami()  # the window is full now
        told = asyncio.create_task(first.whoami())  # 429, Retry-After: 1, then a retry
        while sandbox.state.counters.throttled == 0:
            await asyncio.sleep(0.005)
        await second.whoami()  # must wait out the hold the first client was given
        await told
    counters = sandbox.state.counters
    assert counters.throttled >= 1
    assert counters.early_requests == 0, counters.snapshot()
