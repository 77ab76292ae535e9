"""The early-request counter: requests sent after a 429 was read and before its Retry-After
ran out. Exact on the 429's own connection, grace-bounded on others, and never counting
requests that were already on their way when the 429 went out."""

from __future__ import annotations

import asyncio

import httpx

from app.sandbox import SandboxConfig
from tests.fixtures.sandbox import RunningSandbox, start_sandbox
from tests.sandbox.conftest import ODATA_HEADERS, fetch_token


def _long_hold(**options: float) -> SandboxConfig:
    """One request a minute and a 30 s Retry-After: no step here depends on machine speed."""
    return SandboxConfig(
        max_requests_per_window=1, window_seconds=60, retry_after_seconds=30, **options
    )


async def _headers(running: RunningSandbox) -> dict[str, str]:
    token = (await fetch_token(running)).json()["access_token"]
    return {**ODATA_HEADERS, "Authorization": f"Bearer {token}"}


def _one_connection(running: RunningSandbox, headers: dict[str, str]) -> httpx.AsyncClient:
    """A client that can only ever use one TCP connection."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(base_url=running.api_url, headers=headers, limits=limits)


def _port(response: httpx.Response) -> int:
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


async def test_immediate_retries_on_the_same_connection_are_counted_exactly() -> None:
    with start_sandbox(_long_hold()) as running:
        async with _one_connection(running, await _headers(running)) as api:
            assert (await api.get("WhoAmI")).status_code == 200
            throttled = await api.get("WhoAmI")
            assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "30"
            retries = [await api.get("WhoAmI") for _ in range(3)]  # a client bug
            assert {_port(r) for r in [throttled, *retries]} == {_port(throttled)}
        assert {r.status_code for r in retries} == {429}
        counters = running.state.counters
        assert (counters.early_requests, counters.early_same_connection) == (3, 3)
        assert counters.throttled == 4


async def test_retries_on_a_new_connection_are_counted() -> None:
    with start_sandbox(_long_hold(early_grace_seconds=0.2)) as running:
        headers = await _headers(running)
        async with _one_connection(running, headers) as first:
            assert (await first.get("WhoAmI")).status_code == 200
            throttled = await first.get("WhoAmI")
            assert throttled.status_code == 429
            await asyncio.sleep(0.5)  # past the grace, well inside the 30 s Retry-After
            async with _one_connection(running, headers) as second:
                retry = await second.get("WhoAmI")
                assert _port(retry) != _port(throttled)
        assert retry.status_code == 429
        counters = running.state.counters
        assert (counters.early_requests, counters.early_same_connection) == (1, 0)

        # With no grace, even an immediate retry on a fresh connection counts: it can only
        # arrive after the 429 was fully written.
        async with httpx.AsyncClient(base_url=running.control_url) as control:
            limits = await control.put("/limits", json={"early_grace_seconds": 0})
            assert limits.json()["early_grace_seconds"] == 0
            async with _one_connection(running, headers) as third:
                assert (await third.get("WhoAmI")).status_code == 200
                assert (await third.get("WhoAmI")).status_code == 429
            async with _one_connection(running, headers) as fourth:
                assert (await fourth.get("WhoAmI")).status_code == 429
            snapshot = (await control.get("/counters")).json()
        assert (snapshot["early_requests"], snapshot["early_same_connection"]) == (2, 0)
        assert snapshot["throttled"] == 4


async def test_a_well_behaved_burst_is_never_counted() -> None:
    """Twelve connections of one user fire at once; the user waits out the Retry-After of
    every 429 it got, then resends the four throttled requests on their own connections.
    Requests that were on their way when the 429s went out are not early, nor is the resend.
    """
    config = SandboxConfig(max_requests_per_window=8, window_seconds=1, retry_after_seconds=1)
    with start_sandbox(config) as running:
        headers = await _headers(running)
        clients = [_one_connection(running, headers) for _ in range(12)]
        try:
            burst = await asyncio.gather(*(client.get("WhoAmI") for client in clients))
            assert sorted(r.status_code for r in burst) == [200] * 8 + [429] * 4
            assert running.state.counters.early_requests == 0
            throttled = [c for c, r in zip(clients, burst, strict=True) if r.status_code == 429]
            await asyncio.sleep(max(float(r.headers.get("Retry-After", 0)) for r in burst))
            resent = await asyncio.gather(*(client.get("WhoAmI") for client in throttled))
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
        assert [r.status_code for r in resent] == [200] * 4
        counters = running.state.counters
        assert (counters.early_requests, counters.early_same_connection) == (0, 0)
        assert counters.throttled == 4 and counters.total_requests == 16
