"""Scale-out benchmark: a full sync with 1 worker process, then with 3, on PostgreSQL.

    .venv/bin/python bench/scale_out.py [--items 3000] [--customers 300]

Each pass gets a fresh PostgreSQL database (``SALESBRIDGE_BENCH_POSTGRES_URL``, default
the local test server), its own redis-server and a sandbox process as the CRM, then seeds
the company of tests/reliability (units, a currency, a price group, items with prices,
customers and contacts), queues a full sync and starts N ``salesbridge worker`` processes.
The clock runs from queueing to the last full-sync entry finished. Prints one JSON line;
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from app.auth.encryption import encrypt_secret  # noqa: E402
from app.connection.defaults import recreate_default_setup  # noqa: E402
from app.db import create_engine, create_sessionmaker, session_scope  # noqa: E402
from app.jobs import scheduling  # noqa: E402
from app.migrations import upgrade_database  # noqa: E402
from app.models.integration import (  # noqa: E402
    ConnectionSetup,
    IntegrationSynchJob,
    JobKind,
    JobQueueEntry,
    JobStatus,
)
from app.settings import Settings  # noqa: E402
from bench.dataverse_limits import _free_port, _start_sandbox  # noqa: E402
from tests.fixtures import services  # noqa: E402
from tests.reliability import company  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "SALESBRIDGE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def _connect(sessionmaker: Any, settings: Settings, base_url: str) -> None:
    async with session_scope(sessionmaker) as session:
        setup = ConnectionSetup(
            server_address=base_url, is_enabled=True, dataverse_connection_enabled=True,
            token_url=f"{base_url}/sandbox-tenant/oauth2/v2.0/token", client_id="sandbox-client",
            client_secret_encrypted=encrypt_secret(settings, "sandbox-secret"),
        )  # fmt: skip
        session.add(setup)
        await session.flush()
        await recreate_default_setup(session, setup=setup)


async def _finished(sessionmaker: Any, ids: list[int]) -> bool:
    async with sessionmaker() as session:
        statement = select(JobQueueEntry.status, JobQueueEntry.last_error).where(
            col(JobQueueEntry.id).in_(ids)
        )
        rows = (await session.exec(statement)).all()
    failed = [error for status, error in rows if status == JobStatus.error]
    if failed:
        msg = f"a full-sync entry failed: {failed[0]}"
        raise RuntimeError(msg)
    return all(status == JobStatus.finished for status, _ in rows)


async def _records(sessionmaker: Any, ids: list[int]) -> int:
    job = IntegrationSynchJob
    async with sessionmaker() as session:
        total = func.sum(job.inserted + job.modified + job.unchanged + job.failed)
        statement = select(total).where(col(job.job_queue_entry_id).in_(ids))
        return int((await session.exec(statement)).one() or 0)


def _start_workers(count: int, settings: Settings, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(
        SALESBRIDGE_DATA_DIR=str(settings.data_dir), SALESBRIDGE_DATABASE_URL=settings.database_url,
        SALESBRIDGE_REDIS_URL=settings.redis_url or "", SALESBRIDGE_SCHEDULER_TICK_SECONDS="1",
        SALESBRIDGE_JOB_TIMEOUT_SECONDS="600",
        SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES="true",  # the sandbox CRM is on 127.0.0.1
    )  # fmt: skip
    command = [str(Path(sys.executable).parent / "salesbridge"), "worker"]
    workers = []
    for n in range(count):
        with (log_dir / f"worker-{n}.log").open("wb") as sink:
            workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink,
                                            stderr=subprocess.STDOUT))  # fmt: skip
    return workers


async def one_pass(workers: int, size: company.Size) -> dict[str, Any]:
    port = _free_port()
    sandbox = _start_sandbox(port)
    redis = services.RedisServer()
    url = await services.create_run_database(POSTGRES_URL)
    tmp = Path(tempfile.mkdtemp(prefix="salesbridge-scale-out-"))
    running: list[subprocess.Popen[bytes]] = []
    try:
        await upgrade_database(url)
        settings = Settings(data_dir=tmp / "data", database_url=url, redis_url=redis.url)
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        await _connect(sessionmaker, settings, f"http://127.0.0.1:{port}")
        await company.seed(sessionmaker, size)
        async with session_scope(sessionmaker) as session:
            entries = await scheduling.request_runs(session, kind=JobKind.full_sync)
            await session.flush()
            ids = [e.id for e in entries if e.id is not None]
        started = time.perf_counter()
        running = _start_workers(workers, settings, tmp)
        while not await _finished(sessionmaker, ids):
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        records = await _records(sessionmaker, ids)
        await engine.dispose()
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(timeout=30)
        redis.stop()
        sandbox.terminate()
        sandbox.wait(timeout=10)
        await services.drop_run_database(POSTGRES_URL, url)
        shutil.rmtree(tmp, ignore_errors=True)
    return {"records": records, "seconds": round(seconds, 2),
            "records_per_second": round(records / seconds, 1)}  # fmt: skip


async def main(size: company.Size) -> dict[str, Any]:
    one = await one_pass(1, size)
    three = await one_pass(3, size)
    return {
        "bench": "scale_out", "items": size.items, "customers": size.customers,
        "workers_1": one, "workers_3": three,
        "speedup": round(three["records_per_second"] / one["records_per_second"], 2),
    }  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--customers", type=int, default=300)
    arguments = parser.parse_args()
    size = company.Size(items=arguments.items, customers=arguments.customers)
    print(json.dumps(asyncio.run(main(size))))  # noqa: T201
