"""Client fixtures: a fresh sandbox (uvicorn on 127.0.0.1) and a client signed in to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from app.dataverse import ClientCredentials, DataverseClient, RetryPolicy
from app.sandbox import SandboxConfig
from tests.fixtures.sandbox import RunningSandbox, start_sandbox

# Fast backoff so fault tests stay quick (the schedule's shape is tested in test_retry.py);
# 20 attempts: with 44% of attempts failing in the fault tests, 10 would fail ~3% of runs.
FAST_RETRY = RetryPolicy(
    max_attempts=20, base_delay_seconds=0.02, max_delay_seconds=0.3, deadline_seconds=60
)


def credentials_for(sandbox: RunningSandbox, *, secret: str | None = None) -> ClientCredentials:
    return ClientCredentials(
        client_id=sandbox.config.client_id,
        client_secret=secret if secret is not None else sandbox.config.client_secret,
        token_url=sandbox.token_url,
    )


def client_for(sandbox: RunningSandbox, **options: object) -> DataverseClient:
    options.setdefault("retry_policy", FAST_RETRY)
    return DataverseClient(sandbox.base_url, credentials=credentials_for(sandbox), **options)  # type: ignore[arg-type]


@pytest.fixture
def dv_sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig()) as running:
        yield running


@pytest.fixture
async def crm(dv_sandbox: RunningSandbox) -> AsyncIterator[DataverseClient]:
    async with client_for(dv_sandbox) as client:
        yield client
