"""Sync benchmark (spec/quality.md): full sync of N items (+ units, prices) into the sandbox,
then an incremental run after 10 item changes. Prints one JSON line; asserts nothing.

    .venv/bin/python bench/sync.py --items 10000

The sandbox runs in its own process (as the CRM would be elsewhere); the ERP database is
a fresh SQLite file migrated with Alembic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event, insert, update  # noqa: E402
from sqlmodel import col  # noqa: E402

from app.clock import utc_now  # noqa: E402
from app.dataverse import client_from_connection  # noqa: E402
from app.db import create_engine, create_sessionmaker, session_scope  # noqa: E402
from app.migrations import upgrade_database  # noqa: E402
from app.models import erp  # noqa: E402
from app.models.integration import ConnectionSetup  # noqa: E402
from app.sync.defaults import recreate_default_setup  # noqa: E402
from app.sync.runner import RunOptions, run_mapping  # noqa: E402
from bench.dataverse_limits import _free_port, _start_sandbox  # noqa: E402

UNITS = ("PCS", "BOX", "KG", "L", "SET")


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


async def _timed(sessionmaker: Any, crm: Any, name: str, *, is_full: bool) -> tuple[float, int]:
    started = time.perf_counter()
    result = await run_mapping(sessionmaker, crm, mapping_name=name,
                               options=RunOptions(is_full=is_full, page_size=1000,
                                                  batch_size=500, concurrency=4))  # fmt: skip
    records = sum(c.inserted + c.modified + c.unchanged for c in result.counters.values())
    failed = sum(c.failed for c in result.counters.values())
    if failed:
        print(f"{name}: {failed} failed", file=sys.stderr)
    return time.perf_counter() - started, records


async def main(items: int) -> dict[str, Any]:
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
            async with client_from_connection(
                server_address=base_url, api_version="9.2",
                authentication_type="oauth_client_secret", client_id="sandbox-client",
                client_secret="sandbox-secret",  # noqa: S106 - the sandbox's well-known default
                token_url=f"{base_url}/sandbox-tenant/oauth2/v2.0/token",
            ) as crm:  # fmt: skip
                figures = await _run(engine, sessionmaker, crm)
            await engine.dispose()
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
    return {"bench": "sync", "items": items, **figures}


async def _run(engine: Any, sessionmaker: Any, crm: Any) -> dict[str, Any]:
    full_seconds = 0.0
    full_records = 0
    for name in ("UNIT OF MEASURE", "ITEM-PRODUCT", "CUSTPRCGRP-PRICE", "SALESPRC-PRODPRICE"):
        seconds, records = await _timed(
            sessionmaker, crm, name, is_full=name != "SALESPRC-PRODPRICE"
        )
        full_seconds += seconds
        full_records += records
    full_requests = crm.stats.requests
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
    incremental_seconds, _ = await _timed(sessionmaker, crm, "ITEM-PRODUCT", is_full=False)
    event.remove(engine.sync_engine, "before_cursor_execute", count)
    return {
        "full_records": full_records,
        "full_seconds": round(full_seconds, 2),
        "full_records_per_second": round(full_records / full_seconds, 1),
        "full_crm_requests": full_requests,
        "incremental_changed": 10,
        "incremental_seconds": round(incremental_seconds, 3),
        "incremental_sql_statements": statements,
        "incremental_crm_requests": crm.stats.requests - before,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.items))))
