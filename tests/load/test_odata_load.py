"""The OData service under 32 concurrent clients for 60 s in a real ``salesbridge serve`` process.

Slow step only (``pytest -m slow``). The mix is bench/odata_load.py's (key lookup,
startswith + $top, numeric filter ordered + $top, /$count, full paging); the assertion is
correctness only: every request answered 200 with a well-formed body, the process alive and
its log free of unhandled errors. The latency figures come from the bench, never from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.settings import Settings
from bench.odata_load import KINDS, environment, run_load, start_processes, stop_processes
from tests.fixtures.services import free_port
from tests.odata import factories

pytestmark = pytest.mark.slow

ITEMS = 3000
CLIENTS = 32
SECONDS = 60.0


@pytest.fixture
def api_port(settings: Settings, tmp_path: Path) -> Iterator[int]:
    port = free_port()
    env = environment(settings.database_url, settings.redis_url, settings.data_dir)
    processes = start_processes(env, port, 0, tmp_path)
    yield port
    stop_processes(processes)
    log = (tmp_path / "process-0.log").read_text(errors="replace")
    assert "unhandled_error" not in log, log[-3000:]


async def test_32_clients_for_60_seconds_without_an_error(
    session: AsyncSession, settings: Settings, api_port: int
) -> None:
    numbers = [f"L{n:05d}" for n in range(ITEMS)]
    await factories.add_items(session, numbers)
    await factories.add_ledger(session, [(no, "BLUE", n % 20) for n, no in enumerate(numbers)])
    reader = await factories.odata_reader(session, settings)  # commits

    figures = await run_load(
        api_port, reader["Authorization"], numbers, clients=CLIENTS, seconds=SECONDS
    )

    assert figures["errors"] == 0, figures["error_samples"]
    assert all(figures["kinds"][kind]["requests"] > 0 for kind in KINDS), figures
    assert figures["full_walks"] >= 1  # whole walks of every item, nextLink to the end
    assert figures["paging_rows"] >= ITEMS
