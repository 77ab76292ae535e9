"""Service protection limits (429 + Retry-After + Dataverse's codes, early-request counter),
fault injection (500/503, dropped connections, random 429s) and the control API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from app.sandbox import SandboxConfig
from tests.fixtures.sandbox import RunningSandbox, start_sandbox
from tests.sandbox.conftest import api_client, error_of


async def test_requests_per_window_and_early_requests() -> None:
    config = SandboxConfig(max_requests_per_window=3, window_seconds=1.0)
    with start_sandbox(config) as running:
        async with await api_client(running) as api:
            for _ in range(3):
                assert (await api.get("WhoAmI")).status_code == 200
            throttled = await api.get("WhoAmI")
            assert throttled.status_code == 429
            assert throttled.headers["Retry-After"] == "1"
            error = error_of(throttled)
            assert error["code"] == "0x80072322"
            assert (
                error["message"]
                == "Number of requests exceeded the limit of 3 over time window of 1 seconds."
            )
            await asyncio.sleep(0.2)
            early = await api.get("WhoAmI")  # a client bug: Retry-After has not passed
            assert early.status_code == 429
            assert running.state.counters.early_requests == 1
            await asyncio.sleep(1.0)
            assert (await api.get("WhoAmI")).status_code == 200
        counters = running.state.counters
        assert (counters.early_requests, counters.throttled, counters.total_requests) == (1, 2, 6)


async def test_concurrent_requests_limit() -> None:
    config = SandboxConfig(max_concurrent_requests=2, latency_ms=300)
    with start_sandbox(config) as running:
        async with await api_client(running) as api:
            responses = await asyncio.gather(*(api.get("WhoAmI") for _ in range(4)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 200, 429, 429]
        rejected = [r for r in responses if r.status_code == 429]
        assert all(error_of(r)["code"] == "0x80072326" for r in rejected)
        assert (
            error_of(rejected[0])["message"]
            == "Number of concurrent requests exceeded the limit of 2."
        )
        assert all(int(r.headers["Retry-After"]) >= 1 for r in rejected)
        assert running.state.counters.max_concurrent == 2
        assert running.state.counters.early_requests == 0  # they were on the wire together


async def test_control_api_sets_limits_and_reads_counters(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.control_url) as control:
        assert (await control.get("/limits")).json()["max_requests_per_window"] is None
        changed = await control.put(
            "/limits", json={"max_requests_per_window": 1, "retry_after_seconds": 30}
        )
        assert changed.json()["max_requests_per_window"] == 1
        refused = await control.put("/limits", json={"no_such_limit": 1})
        assert refused.status_code == 400
        assert (await api.get("WhoAmI")).status_code == 200
        throttled = await api.get("WhoAmI")
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "30"
        counters = (await control.get("/counters")).json()
        assert counters["throttled"] == 1 and counters["by_entity_set"]["WhoAmI"] == 2
        assert counters["by_status"] == {"200": 1, "429": 1}
        await control.put("/limits", json={"max_requests_per_window": None})
        assert (await control.post("/reset")).json()["reset"] is True
        assert (await api.get("WhoAmI")).status_code == 200
        assert (await control.get("/counters")).json()["total_requests"] == 1
        summary = (await control.get("")).json()
        assert summary["rows"]["systemusers"] == 1 and summary["user_id"] == sandbox.state.user_id


async def test_injected_server_errors_run_nothing(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.control_url) as control:
        faults = await control.put("/faults", json={"error_rate": 1.0, "seed": 7})
        assert faults.json()["error_rate"] == 1.0
        assert (await control.put("/faults", json={"error_rate": 2})).status_code == 400
    responses = [await api.post("accounts", json={"name": f"A{i}"}) for i in range(20)]
    statuses = {r.status_code for r in responses}
    assert statuses == {500, 503}
    for response in responses:
        error_of(response)
    assert sandbox.state.count("accounts") == 0
    assert sandbox.state.counters.errors_injected == 20 == sandbox.state.counters.faults_injected


async def test_dropped_connection_after_the_write(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    sandbox.config.drop_rate = 1.0
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post(
            "accounts", json={"accountid": "5b0a3c8e-6f4e-4a52-9a55-000000000001", "name": "landed"}
        )
    sandbox.config.drop_rate = 0.0
    # The write landed although the client never saw an answer: a retried create with the
    # same client-generated id is refused rather than duplicated.
    assert sandbox.state.count("accounts") == 1
    retried = await api.post(
        "accounts", json={"accountid": "5b0a3c8e-6f4e-4a52-9a55-000000000001", "name": "landed"}
    )
    assert retried.status_code == 412
    assert sandbox.state.counters.drops_injected == 1


async def test_random_throttling_fault() -> None:
    with start_sandbox(SandboxConfig(throttle_rate=1.0, retry_after_seconds=2)) as running:
        async with await api_client(running) as api:
            response = await api.get("WhoAmI")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert error_of(response)["code"] == "0x80072322"
