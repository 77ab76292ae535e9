"""Reliability runs: worker processes (as in production), real Redis, the sandbox over HTTP.

The worker fixtures of tests/workers are used here with longer runs (a full sync of a few
thousand records takes more than their 5 s); helpers queue a full sync and wait for the
queue to come to rest, failing with the workers' logs when it does not.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from app.clock import utc_now
from app.db import SessionMaker, session_scope
from app.errors import ConflictError
from app.jobs import queue, scheduling
from app.models.integration import JobKind, JobQueueEntry, JobStatus
from app.settings import Settings
from tests.fixtures import services
from tests.fixtures.sandbox import RunningSandbox
from tests.jobs.conftest import connected  # noqa: F401 - a fixture used here
from tests.workers.conftest import (  # noqa: F401 - fixtures used here
    arq_pool,
    start_worker,
    tick_ctx,
    wait_for,
)

RUN_SECONDS = 60  # a run's timeout: a mapping's full sync of a few thousand rows fits


@pytest.fixture
def queue_settings(settings: Settings) -> Settings:
    """Replaces tests/workers' fixture of this name: a fast tick, room for long runs."""
    return settings.model_copy(
        update={"scheduler_tick_seconds": 1, "job_timeout_seconds": RUN_SECONDS}
    )


def new_seed() -> int:
    """A random seed, printed so a failing round can be replayed: RELIABILITY_SEED=<seed>
    makes every round of a run use that one (pytest shows the output of a failed test)."""
    fixed = os.environ.get("RELIABILITY_SEED")
    return int(fixed) if fixed else random.SystemRandom().randrange(2**32)


async def queue_full_sync(sessionmaker: SessionMaker, *, timeout: float = 120) -> list[int]:
    """What ``POST /api/v1/sync/full`` queues: every mapping, each after its dependencies.

    A running recurring entry (woken by the round's ERP edits) refuses the request with
    409 and queues nothing; as a person would, ask again once it has ended.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with session_scope(sessionmaker) as session:
                entries = await scheduling.request_runs(session, kind=JobKind.full_sync)
                await session.flush()
                return [entry.id for entry in entries if entry.id is not None]
        except ConflictError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def all_entries(sessionmaker: SessionMaker) -> list[JobQueueEntry]:
    async with sessionmaker() as session:
        return list(await session.exec(select(JobQueueEntry).order_by(col(JobQueueEntry.id))))


async def is_at_rest(sessionmaker: SessionMaker, entry_ids: Sequence[int]) -> bool:
    """The full sync ended and nothing else is running or due (recurring runs included)."""
    entries = {e.id: e for e in await all_entries(sessionmaker)}
    for entry_id in entry_ids:
        entry = entries[entry_id]
        if entry.status == JobStatus.error:
            pytest.fail(f"entry {entry.mapping_name} ended in error: {entry.last_error}")
    if any(entries[i].status != JobStatus.finished for i in entry_ids):
        return False
    if any(e.status == JobStatus.in_process for e in entries.values()):
        return False
    async with sessionmaker() as session:
        return not await queue.find_due(session, now=utc_now())


async def wait_at_rest(
    sessionmaker: SessionMaker, entry_ids: Sequence[int], *, timeout: float,
    details: Callable[[], str] = str,
) -> None:  # fmt: skip
    await wait_for(
        lambda: is_at_rest(sessionmaker, entry_ids), timeout=timeout,
        what="the full sync to end and the queue to rest", details=details,
    )  # fmt: skip


async def expire_claims(sessionmaker: SessionMaker) -> int:
    """Move the clock past the claims of killed workers instead of waiting for it.

    Claims expire after the run timeout plus a margin (65 s here); that expiry itself is
    tested with real waiting in tests/workers. Returns how many claims were cut short.
    """
    async with session_scope(sessionmaker) as session:
        result = await session.exec(
            update(JobQueueEntry)
            .where(col(JobQueueEntry.status) == JobStatus.in_process)
            .values(claimed_until=utc_now() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        count: int = result.rowcount
    return count


def assert_consistent(problems: list[str], context: str = "") -> None:
    assert not problems, f"{context}\n" + "\n".join(problems)


async def set_faults(sandbox: RunningSandbox, **faults: Any) -> dict[str, Any]:
    """Through the sandbox's control API, as an operator would."""
    async with httpx.AsyncClient() as client:
        response = await client.put(f"{sandbox.control_url}/faults", json=faults)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def counters(sandbox: RunningSandbox) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{sandbox.control_url}/counters")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


class OwnRedis:
    """A redis-server of this test alone, on a fixed port, so it can be restarted in place."""

    def __init__(self) -> None:
        self.port = services.free_port()
        self.dir = tempfile.mkdtemp(prefix="salesbridge-reliability-redis-")
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        binary = services._redis_server_binary()  # noqa: SLF001
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no", "--dir", self.dir]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while not services._redis_answers(self.url):  # noqa: SLF001
            if time.monotonic() > deadline:
                msg = "could not start redis-server"
                raise RuntimeError(msg)
            time.sleep(0.02)

    def stop(self) -> None:
        """As a crash or a restart without persistence: every trigger in it is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)
