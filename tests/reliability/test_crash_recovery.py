"""Worker processes killed with SIGKILL at random points of full syncs, then restarted.

Ten rounds (three on SQLite) over one company of a few thousand items (with units, prices,
customers and contacts): each round changes some ERP rows, queues a full sync, kills the
worker after a random number of CRM requests, checks what must hold at any instant,
starts a new worker (alternately ``salesbridge worker`` and ``arq``) and checks, once the
queue rests, that the CRM holds exactly one row per ERP row and the sync log shows the
interruption.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import Callable

import pytest
from sqlmodel import col, select

from app.db import SessionMaker
from app.jobs.queue import INTERRUPTED_MESSAGE
from app.models.integration import ConnectionSetup, IntegrationSynchJob, JobStatus
from tests.fixtures.sandbox import RunningSandbox
from tests.reliability import company, consistency
from tests.reliability.conftest import (
    all_entries,
    assert_consistent,
    expire_claims,
    is_at_rest,
    new_seed,
    queue_full_sync,
    wait_at_rest,
)
from tests.workers.conftest import ARQ_WORKER, SALESBRIDGE_WORKER, WorkerProcess, wait_for

# Ten rounds on PostgreSQL (production's database), three on SQLite, to fit the slow step.
ROUNDS = {"postgresql": 10, "sqlite": 3}
SIZE = company.Size(items=2000, customers=200)
NEW_ITEMS_PER_ROUND = 100
STARTED = {"salesbridge": "worker_started", "arq": "Starting worker"}
COMMANDS = (("salesbridge", SALESBRIDGE_WORKER), ("arq", ARQ_WORKER))


async def _open_jobs(sessionmaker: SessionMaker) -> set[int]:
    async with sessionmaker() as session:
        statement = select(IntegrationSynchJob.id).where(
            col(IntegrationSynchJob.finished_at).is_(None)
        )
        return {i for i in (await session.exec(statement)).all() if i is not None}


async def _messages(sessionmaker: SessionMaker, ids: set[int]) -> set[str]:
    async with sessionmaker() as session:
        statement = select(IntegrationSynchJob).where(col(IntegrationSynchJob.id).in_(ids))
        return {f"{j.message}|{j.finished_at is not None}" for j in await session.exec(statement)}


@pytest.mark.slow
async def test_killed_workers_leave_one_crm_row_per_erp_row(
    sessionmaker: SessionMaker,
    sandbox: RunningSandbox,
    connected: ConnectionSetup,
    start_worker: Callable[[list[str]], WorkerProcess],
    database_url: str,
) -> None:
    rounds = int(os.environ.get("CRASH_ROUNDS", ROUNDS[database_url.split("+")[0]]))
    await company.seed(sessionmaker, SIZE)
    baseline = consistency.baseline_of(sandbox)
    started: list[WorkerProcess] = []

    async def start(round_no: int) -> WorkerProcess:
        name, command = COMMANDS[round_no % 2]
        worker = start_worker(command)
        started.append(worker)
        await worker.wait_started(STARTED[name])
        return worker

    def logs() -> str:
        return "\n".join(w.output[-4000:] for w in started[-2:])

    worker: WorkerProcess | None = None
    budget = SIZE.items // 100  # CRM requests before the first kill: fewer than a full sync
    interrupted_runs = 0
    for round_no in range(rounds):
        seed = new_seed()
        print(f"crash round {round_no}: seed {seed}")  # noqa: T201 - replay a failing round
        rng = random.Random(seed)
        if round_no:
            await company.change_some(sessionmaker, rng, new_items=NEW_ITEMS_PER_ROUND)
        requests_before = sandbox.state.counters.total_requests
        entry_ids = await queue_full_sync(sessionmaker)
        worker = worker or await start(0)  # after the first queueing: nothing else runs yet
        kill_at = requests_before + rng.randint(1, budget)

        async def kill_point(kill_at: int = kill_at, ids: list[int] = entry_ids) -> bool:
            reached = sandbox.state.counters.total_requests >= kill_at
            return reached or await is_at_rest(sessionmaker, ids)

        await wait_for(kill_point, timeout=120, what="the kill point", details=logs)
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=10)
        await asyncio.sleep(0.3)  # the sandbox ends a request the dead worker had sent
        context = f"round {round_no}, seed {seed}, killed after request {kill_at}"
        snap = await consistency.snapshot(sessionmaker, sandbox)
        assert_consistent(
            consistency.problems_at_any_instant(snap, baseline=baseline), f"{context}: at the kill"
        )
        cut_entries = {e.id: e.run_count for e in await all_entries(sessionmaker)
                       if e.status == JobStatus.in_process}  # fmt: skip
        cut_jobs = await _open_jobs(sessionmaker)
        await expire_claims(sessionmaker)

        worker = await start(round_no + 1)
        await wait_at_rest(sessionmaker, entry_ids, timeout=240, details=logs)
        snap = await consistency.snapshot(sessionmaker, sandbox)
        assert_consistent(
            consistency.problems_at_rest(snap, baseline=baseline), f"{context}: after restart"
        )
        # The sync log shows the interruption: what the dead run left open says it stopped.
        assert await _open_jobs(sessionmaker) == set(), context
        if cut_jobs:
            assert await _messages(sessionmaker, cut_jobs) == {f"{INTERRUPTED_MESSAGE}|True"}
        after = {e.id: e for e in await all_entries(sessionmaker)}
        for entry_id, run_count in cut_entries.items():
            assert after[entry_id].run_count > run_count, context  # it ran again
        interrupted_runs += bool(cut_entries)
        budget = max(2, sandbox.state.counters.total_requests - requests_before)
    print(f"crash rounds: {rounds}, runs cut mid-way: {interrupted_runs}")  # noqa: T201
    assert interrupted_runs >= rounds // 2  # most kills landed inside a run
