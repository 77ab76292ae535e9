"""429 storms, 503 bursts and dropped connections against the sandbox's real limits and faults.

Retry-After is scaled down to 1 s so the storms stay short. Correctness, not speed, is
asserted: every row arrives exactly once and nothing is sent before Retry-After passes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from app.dataverse import ChangeSet, DataverseClient, RetryPolicy, create_op
from app.dataverse.errors import DataverseTransportError, RetriableError
from app.sandbox import SandboxConfig
from tests.dataverse.conftest import client_for
from tests.fixtures.sandbox import RunningSandbox, start_sandbox


async def _counters(sandbox: RunningSandbox) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{sandbox.control_url}/counters")
        response.raise_for_status()
        counters: dict[str, Any] = response.json()
        return counters


async def _stored_ids(crm: DataverseClient, entity_set: str, key: str) -> list[str]:
    return [row[key] async for row in crm.query(entity_set, select=[key], page_size=5000)]


class SendLog(httpx.AsyncHTTPTransport):
    """Notes when each request left and when its answer arrived (client side)."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[tuple[float, float, int, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.monotonic()
        response = await super().handle_async_request(request)
        retry_after = response.headers.get("Retry-After")
        self.exchanges.append((sent_at, time.monotonic(), response.status_code, retry_after))
        return response

    def sent_while_held(self) -> int:
        holds = [
            (got, got + float(ra or 0)) for _, got, status, ra in self.exchanges if status == 429
        ]
        return sum(any(a <= sent < b for a, b in holds) for sent, *_ in self.exchanges)


async def test_429_storm_on_the_request_window_honours_retry_after() -> None:
    config = SandboxConfig(max_requests_per_window=25, window_seconds=1, retry_after_seconds=1)
    wire = SendLog()
    with start_sandbox(config) as sandbox:
        async with client_for(sandbox, initial_concurrency=8, transport=wire) as crm:
            ids = await asyncio.gather(
                *(crm.create("accounts", {"name": f"storm {n}"}) for n in range(90))
            )
            counters = await _counters(sandbox)
            assert counters["throttled"] > 0 and crm.stats.throttled > 0
            assert counters["early_requests"] == 0
            assert wire.sent_while_held() == 0  # the client's own view agrees
            await sandbox_limits_off(sandbox)
            stored = await _stored_ids(crm, "accounts", "accountid")
    assert sorted(stored) == sorted(str(i) for i in ids)  # each exactly once


async def test_429_storm_on_concurrency_halves_the_client_and_never_sends_early() -> None:
    config = SandboxConfig(max_concurrent_requests=3, retry_after_seconds=1, latency_ms=10)
    wire = SendLog()
    with start_sandbox(config) as sandbox:
        async with client_for(sandbox, initial_concurrency=12, transport=wire) as crm:
            await asyncio.gather(
                *(crm.create("contacts", {"firstname": f"c{n}"}) for n in range(60))
            )
            assert wire.sent_while_held() == 0
            counters = await _counters(sandbox)
            assert counters["throttled"] > 0
            assert counters["early_requests"] == 0
            assert crm.limiter.limit < 12  # halved on the storm
            assert crm.limiter.peak_in_flight <= 12
        assert sandbox.state.count("contacts") == 60


async def test_retry_after_beyond_the_deadline_surfaces_as_retriable() -> None:
    config = SandboxConfig(max_requests_per_window=1, window_seconds=60, retry_after_seconds=30)
    with start_sandbox(config) as sandbox:
        policy = RetryPolicy(deadline_seconds=5)
        async with client_for(sandbox, retry_policy=policy) as crm:
            await crm.whoami()
            with pytest.raises(RetriableError) as caught:
                await crm.whoami()
        error = caught.value
        assert error.status_code == 429 and error.code == "0x80072322"
        assert error.retry_after_seconds == 30
        assert error.failure_kind == "transient"
        assert sandbox.state.counters.early_requests == 0


async def test_503_bursts_and_dropped_connections_make_no_duplicates() -> None:
    config = SandboxConfig(error_rate=0.3, error_statuses=(503,), drop_rate=0.2, seed=4)
    with start_sandbox(config) as sandbox:
        async with client_for(sandbox, initial_concurrency=8) as crm:
            ids = await asyncio.gather(
                *(
                    crm.create("products", {"name": f"p{n}", "productnumber": f"N{n}"})
                    for n in range(120)
                )
            )
            counters = await _counters(sandbox)
            assert counters["errors_injected"] > 0 and counters["drops_injected"] > 0
            assert crm.stats.backoff_retries > 0
            # A dropped answer after the row was written: the replay found its own row.
            assert crm.stats.replayed_duplicates > 0
            await sandbox_faults_off(sandbox)
            stored = await _stored_ids(crm, "products", "productid")
    assert sorted(stored) == sorted(str(i) for i in ids)
    assert len(set(stored)) == 120


async def test_batches_survive_drops_without_duplicates() -> None:
    config = SandboxConfig(error_rate=0.2, error_statuses=(502, 503, 504), drop_rate=0.3, seed=11)
    with start_sandbox(config) as sandbox:
        async with client_for(sandbox) as crm:
            batches = [
                [ChangeSet([create_op("accounts", {"name": f"b{b}-{n}"}) for n in range(5)])]
                + [create_op("accounts", {"name": f"b{b}-solo{n}"}) for n in range(5)]
                for b in range(12)
            ]
            outcomes = await asyncio.gather(*(crm.batch(items) for items in batches))
            assert all(result.is_ok for results in outcomes for result in results)
            assert sandbox.state.counters.drops_injected > 0
            await sandbox_faults_off(sandbox)
            stored = await _stored_ids(crm, "accounts", "accountid")
    sent = {str(r.entity_id) for results in outcomes for r in results}
    assert len(sent) == 120
    assert sorted(stored) == sorted(sent)


async def test_refused_connections_give_a_transport_error() -> None:
    with start_sandbox() as sandbox:
        base_url = sandbox.base_url
    # The server is gone: nothing listens on that port any more.
    policy = RetryPolicy(max_attempts=3, base_delay_seconds=0.01, max_delay_seconds=0.02)
    auth_free = DataverseClient(base_url, auth=httpx.BasicAuth("x", "y"), retry_policy=policy)
    async with auth_free as crm:
        with pytest.raises(DataverseTransportError) as caught:
            await crm.get("accounts", uuid.uuid4())
    assert "after 3 attempts" in str(caught.value)
    assert caught.value.failure_kind == "transient"


async def sandbox_limits_off(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as http:
        body = {"max_requests_per_window": None, "max_concurrent_requests": None}
        (await http.put(f"{sandbox.control_url}/limits", json=body)).raise_for_status()


async def sandbox_faults_off(sandbox: RunningSandbox) -> None:
    async with httpx.AsyncClient() as http:
        body = {"error_rate": 0, "drop_rate": 0}
        (await http.put(f"{sandbox.control_url}/faults", json=body)).raise_for_status()
