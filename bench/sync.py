"""Sync benchmark: full sync of N items (+ units, prices) into the sandbox,
then an incremental run after 10 item changes. Prints one JSON line; asserts nothing.

    .venv/bin/python bench/sync.py --items 10000
    .venv/bin/python bench/sync.py --limits [--items 2000]

The sandbox runs in its own process (as the CRM would be elsewhere); the ERP database is
a fresh SQLite file migrated with Alembic. In the same run, ``bench/dataverse.py``'s raw
``$batch`` ingest of as many products (same batch size and concurrency, a fresh sandbox)
gives the ceiling: ``ratio_to_raw`` is the engine's product rate over it. Both parts also
report CPU milliseconds per product of the sandbox's process and of this one (the engine,
or the raw client): on a shared machine the wall rates follow the load, those do not.

``--limits`` turns on the sandbox's service protection limits scaled down 100x (6,000
requests / 300 s -> 60 / 3 s) and small batches, so the run is bound by the request rate:
it reports the share of the allowed rate used, the 429s and the requests the sandbox saw
before a Retry-After it had sent ran out (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import resource
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, insert, update  # noqa: E402
from sqlmodel import col  # noqa: E402

from app.catalog import run_mapping  # noqa: E402
from app.clock import utc_now  # noqa: E402
from app.connection.defaults import recreate_default_setup  # noqa: E402
from app.dataverse import client_from_connection  # noqa: E402
from app.db import create_engine, create_sessionmaker, session_scope  # noqa: E402
from app.migrations import upgrade_database  # noqa: E402
from app.models import erp  # noqa: E402
from app.models.integration import ConnectionSetup, Direction  # noqa: E402
from app.sync.sync_pass import RunOptions  # noqa: E402
from bench.dataverse import cpu_seconds, raw_ingest  # noqa: E402
from bench.dataverse_limits import _free_port, _start_sandbox  # noqa: E402

UNITS = ("PCS", "BOX", "KG", "L", "SET")
FULL_SYNC = ("UNIT OF MEASURE", "ITEM-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODPRICE")
LIMITS_SCALED_100X = {"max_requests_per_window": 60, "window_seconds": 3.0}


@dataclasses.dataclass(frozen=True)
class Knobs:
    """The engine's paging and sending settings (the raw ingest uses the same)."""

    page_size: int = 1000
    batch_size: int = 500  # operations per $batch
    concurrency: int = 4  # $batch requests in flight


def _audit() -> dict[str, Any]:
    now = utc_now()
    return {"system_id": uuid.uuid4(), "created_at": now, "modified_at": now,
            "modified_by": "bench"}  # fmt: skip


async def _seed(sessionmaker: Any, base_url: str, items: int) -> None:
    async with session_scope(sessionmaker) as session:
        setup = ConnectionSetup(server_address=base_url, is_enabled=True)
        session.add(setup)
        await session.flush()
        await recreate_default_setup(session, setup=setup)
        await session.exec(insert(erp.UnitOfMeasure), params=[
            {**_audit(), "code": code, "description": code} for code in UNITS])  # fmt: skip
        await session.exec(insert(erp.CustomerPriceGroup), params=[
            {**_audit(), "code": "RETAIL", "description": "Retail"}])  # fmt: skip
    for start in range(0, items, 5000):
        async with session_scope(sessionmaker) as session:
            rows = [{**_audit(), "no": f"{n:07d}", "description": f"Item {n}", "blocked": False,
                     "base_unit_of_measure": UNITS[n % len(UNITS)], "unit_price": Decimal(n % 97),
                     "unit_cost": Decimal(1), "unit_volume": Decimal(0), "gross_weight": Decimal(0),
                     "vendor_no": "", "vendor_item_no": ""}
                    for n in range(start, min(start + 5000, items))]  # fmt: skip
            await session.exec(insert(erp.Item), params=rows)
            prices = [{**_audit(), "item_no": r["no"], "sales_type": "customer_price_group",
                       "sales_code": "RETAIL", "currency_code": "", "unit_of_measure_code": "",
                       "minimum_quantity": Decimal(0), "unit_price": Decimal(5)}
                      for r in rows[::10]]  # fmt: skip
            await session.exec(insert(erp.SalesPrice), params=prices)


async def _timed(
    sessionmaker: Any, crm: Any, name: str, *, is_full: bool, knobs: Knobs
) -> tuple[float, int]:
    started = time.perf_counter()
    options = RunOptions(is_full=is_full, page_size=knobs.page_size,
                         batch_size=knobs.batch_size, concurrency=knobs.concurrency)  # fmt: skip
    result = await run_mapping(sessionmaker, crm, mapping_name=name, options=options)
    # What the CRM -> ERP pass reads back and finds unchanged is the sync's own writes (loop
    # prevention by content reads them again): not records synchronized.
    records = sum(
        c.inserted + c.modified + (c.unchanged if direction == Direction.to_crm else 0)
        for direction, c in result.counters.items()
    )
    failed = sum(c.failed for c in result.counters.values())
    if failed:
        print(f"{name}: {failed} failed", file=sys.stderr)
    return time.perf_counter() - started, records


def _client(base_url: str) -> Any:
    return client_from_connection(
        server_address=base_url, api_version="9.2",
        authentication_type="oauth_client_secret", client_id="sandbox-client",
        client_secret="sandbox-secret",  # noqa: S106 - the sandbox's well-known default
        token_url=f"{base_url}/sandbox-tenant/oauth2/v2.0/token",
    )  # fmt: skip


async def _with_sandbox(items: int, knobs: Knobs, *, limits: bool) -> dict[str, Any]:
    port = _free_port()
    sandbox = _start_sandbox(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
            await upgrade_database(url)
            engine = create_engine(url)
            sessionmaker = create_sessionmaker(engine)
            await _seed(sessionmaker, base_url, items)
            async with _client(base_url) as crm:
                cpu = _Cpu(psutil.Process(sandbox.pid))
                if limits:
                    figures = await _run_limited(sessionmaker, crm, base_url, knobs, cpu)
                else:
                    figures = await _run(engine, sessionmaker, crm, knobs, cpu)
            await engine.dispose()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    return figures


async def _raw(items: int, knobs: Knobs) -> dict[str, Any]:
    port = _free_port()
    sandbox = _start_sandbox(port)
    try:
        return await raw_ingest(
            f"http://127.0.0.1:{port}", products=items,
            batch_size=knobs.batch_size, concurrency=knobs.concurrency,
            sandbox_pid=sandbox.pid,
        )  # fmt: skip
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)


async def main(items: int, knobs: Knobs, *, limits: bool) -> dict[str, Any]:
    settings = {"items": items, **dataclasses.asdict(knobs)}
    if limits:
        return {
            "bench": "sync --limits",
            **settings,
            **await _with_sandbox(items, knobs, limits=True),
        }
    figures = await _with_sandbox(items, knobs, limits=False)
    raw = await _raw(items, knobs)
    ratio = figures["products_per_second"] / raw["raw_records_per_second"]
    return {"bench": "sync", **settings, **figures, **raw, "ratio_to_raw": round(ratio, 3)}


@dataclasses.dataclass
class _Cpu:
    """CPU seconds spent by the sandbox's process and this one (the engine) so far."""

    sandbox: psutil.Process
    client: psutil.Process = dataclasses.field(default_factory=psutil.Process)

    def now(self) -> tuple[float, float]:
        return cpu_seconds(self.sandbox), cpu_seconds(self.client)


async def _full(sessionmaker: Any, crm: Any, knobs: Knobs, cpu: _Cpu) -> dict[str, Any]:
    full_seconds = 0.0
    full_records = 0
    figures: dict[str, Any] = {}
    for name in FULL_SYNC:
        before = cpu.now()
        seconds, records = await _timed(
            sessionmaker, crm, name, is_full=name != "SALESPRC-PRODPRICE", knobs=knobs
        )
        full_seconds += seconds
        full_records += records
        if name == "ITEM-PRODUCT":
            sandbox_cpu, client_cpu = (b - a for a, b in zip(before, cpu.now(), strict=True))
            figures["products_seconds"] = round(seconds, 2)
            figures["products_per_second"] = round(records / seconds, 1)
            figures["products_sandbox_cpu_ms_per_record"] = round(1000 * sandbox_cpu / records, 3)
            figures["products_engine_cpu_ms_per_record"] = round(1000 * client_cpu / records, 3)
    return {
        "full_records": full_records,
        "full_seconds": round(full_seconds, 2),
        "full_records_per_second": round(full_records / full_seconds, 1),
        "full_crm_requests": crm.stats.requests,
        **figures,
    }


async def _run(engine: Any, sessionmaker: Any, crm: Any, knobs: Knobs, cpu: _Cpu) -> dict[str, Any]:
    figures = await _full(sessionmaker, crm, knobs, cpu)
    full_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The first run after a full sync still reads every product the full sync wrote (they
    # are newer than its signpost); from then on a run starts where the last one ended.
    settle_seconds, _ = await _timed(sessionmaker, crm, "ITEM-PRODUCT", is_full=False, knobs=knobs)
    async with session_scope(sessionmaker) as session:
        nos = [f"{n:07d}" for n in range(0, 10 * 37, 37)]
        changed = col(erp.Item.no).in_(nos)
        values = {"unit_price": Decimal("123.45"), "modified_at": utc_now()}
        await session.exec(update(erp.Item).where(changed).values(**values))
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    before = crm.stats.requests
    incremental_seconds, records = await _timed(
        sessionmaker, crm, "ITEM-PRODUCT", is_full=False, knobs=knobs
    )
    event.remove(engine.sync_engine, "before_cursor_execute", count)
    return {
        **figures,
        "first_idle_run_seconds": round(settle_seconds, 3),
        "incremental_changed": records,
        "incremental_seconds": round(incremental_seconds, 3),
        "incremental_sql_statements": statements,
        "incremental_crm_requests": crm.stats.requests - before,
        "peak_rss_mb_full_sync": round(full_rss, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


async def _run_limited(
    sessionmaker: Any, crm: Any, base_url: str, knobs: Knobs, cpu: _Cpu
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=f"{base_url}/_sandbox") as control:
        (await control.put("/limits", json=LIMITS_SCALED_100X)).raise_for_status()
        await crm.whoami()  # sign in before the clock starts
        (await control.post("/reset")).raise_for_status()  # counters only, not the rows
        started = time.perf_counter()
        figures = await _full(sessionmaker, crm, knobs, cpu)
        elapsed = time.perf_counter() - started
        counters = (await control.get("/counters")).json()
    allowed = LIMITS_SCALED_100X["max_requests_per_window"] / LIMITS_SCALED_100X["window_seconds"]
    achieved = counters["total_requests"] / elapsed
    return {
        **figures,
        "allowed_requests_per_second": round(allowed, 2),
        "achieved_requests_per_second": round(achieved, 2),
        "share_of_allowed_rate": round(achieved / allowed, 3),
        "server_requests": counters["total_requests"],
        "server_429": counters["throttled"],
        "client_429": crm.stats.throttled,
        "early_requests": counters["early_requests"],
        "early_same_connection": counters.get("early_same_connection", 0),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=None, help="10,000; 2,000 with --limits")
    parser.add_argument("--limits", action="store_true", help="service protection limits / 100")
    parser.add_argument("--page-size", type=int, default=Knobs.page_size)
    parser.add_argument("--batch-size", type=int, default=None, help="500; 30 with --limits")
    parser.add_argument("--concurrency", type=int, default=Knobs.concurrency)
    arguments = parser.parse_args()
    count = arguments.items or (2_000 if arguments.limits else 10_000)
    batch_size = arguments.batch_size or (30 if arguments.limits else Knobs.batch_size)
    knobs = Knobs(arguments.page_size, batch_size, arguments.concurrency)
    print(json.dumps(asyncio.run(main(count, knobs, limits=arguments.limits))))
