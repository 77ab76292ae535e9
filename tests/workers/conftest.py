"""Real arq workers on real Redis, in this process (burst) or as separate processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from arq.connections import ArqRedis

from app.db import SessionMaker
from app.settings import Settings
from workers.queue import create_queue_pool
from workers.settings import create_worker

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOB_TIMEOUT_SECONDS = 5  # the smallest the settings allow: a killed run is retried in ~10 s


@pytest.fixture
def queue_settings(settings: Settings) -> Settings:
    """The suite's settings with a fast tick and the shortest run time."""
    return settings.model_copy(
        update={"scheduler_tick_seconds": 1, "job_timeout_seconds": JOB_TIMEOUT_SECONDS}
    )


@pytest.fixture
async def arq_pool(queue_settings: Settings) -> AsyncIterator[ArqRedis]:
    """The run's Redis database, emptied first: no trigger of an earlier test survives."""
    pool = await create_queue_pool(queue_settings)
    await pool.flushdb()
    yield pool
    await pool.aclose()


@pytest.fixture
def tick_ctx(arq_pool: ArqRedis, sessionmaker: SessionMaker) -> dict[str, Any]:
    """What arq hands the tick task: Redis and the worker's sessionmaker."""
    return {"redis": arq_pool, "sessionmaker": sessionmaker}


async def run_burst_worker(settings: Settings) -> int:
    """A real worker that runs what is queued, then stops; no cron, so no extra ticks."""
    worker = create_worker(
        settings, burst=True, cron_jobs=[], handle_signals=False, poll_delay=0.05
    )
    try:
        await worker.async_run()
    finally:
        await worker.close()
    completed: int = worker.jobs_complete
    return completed


async def wait_for(
    check: Callable[[], Awaitable[bool]],
    *,
    timeout: float,
    what: str,
    details: Callable[[], str] = str,
) -> None:
    """Poll until ``check``; on timeout fail with ``details()`` (e.g. the workers' logs)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}\n{details()}")
        await asyncio.sleep(0.05)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    async def wait_started(self, marker: str, *, timeout: float = 30) -> None:
        async def started() -> bool:
            assert self.process.poll() is None, f"worker exited early:\n{self.output}"
            return marker in self.output

        await wait_for(started, timeout=timeout, what=f"{marker!r} in the worker log")


def worker_environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(
        SALESBRIDGE_DATA_DIR=str(settings.data_dir),
        SALESBRIDGE_DATABASE_URL=settings.database_url,
        SALESBRIDGE_REDIS_URL=settings.redis_url,
        SALESBRIDGE_SCHEDULER_TICK_SECONDS=str(settings.scheduler_tick_seconds),
        SALESBRIDGE_JOB_TIMEOUT_SECONDS=str(settings.job_timeout_seconds),
        SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES=str(settings.allow_private_crm_addresses),
    )
    return env


@pytest.fixture
def start_worker(
    queue_settings: Settings, tmp_path: Path
) -> Iterator[Callable[[list[str]], WorkerProcess]]:
    """Start a worker process with a command line; all are stopped after the test."""
    started: list[WorkerProcess] = []

    def start(command: list[str]) -> WorkerProcess:
        log_file = tmp_path / f"worker-{len(started)}.log"
        with log_file.open("wb") as sink:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=worker_environment(queue_settings),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        started.append(WorkerProcess(process=process, log_file=log_file))
        return started[-1]

    yield start
    for worker in started:
        if worker.process.poll() is None:
            worker.process.terminate()
    for worker in started:
        try:
            worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait(timeout=5)


SALESBRIDGE_WORKER = [str(BIN / "salesbridge"), "worker"]
ARQ_WORKER = [sys.executable, "-m", "arq", "workers.settings.WorkerSettings"]
