"""The sandbox's raw ``$batch`` ingest rate for products: the ceiling the sync engine is held to.

Sends new products exactly as the engine does (one change set per product: create, activate,
price list item with ``return=representation``; ``--batch-size`` operations per ``$batch``,
``--concurrency`` batches in flight) but with no ERP database and no planning, so the
figure is what the CRM side alone allows. The sandbox runs in its own process, as the CRM
would be elsewhere. Prints one JSON line; asserts nothing.

    .venv/bin/python bench/dataverse.py --products 10000 [--batch-size 500] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.dataverse import (  # noqa: E402
    BatchOperation,
    ChangeSet,
    ClientCredentials,
    DataverseClient,
    bind,
    create_op,
)
from app.sync import crm_rules  # noqa: E402
from bench.dataverse_limits import _free_port, _start_sandbox  # noqa: E402

UNITS = ("PCS", "BOX", "KG", "L", "SET")
REPRESENTATION = {"Prefer": "return=representation"}


@dataclass(frozen=True)
class Catalog:
    """What every new product points at: unit groups (and their unit), LCY, a price list."""

    context: crm_rules.CrmContext
    schedules: list[uuid.UUID]


def client_for(base_url: str) -> DataverseClient:
    credentials = ClientCredentials(
        "sandbox-client",
        "sandbox-secret",  # the sandbox's well-known default
        token_url=f"{base_url}/sandbox-tenant/oauth2/v2.0/token",
    )
    return DataverseClient(base_url, credentials=credentials)


async def _catalog(crm: DataverseClient) -> Catalog:
    me = await crm.whoami()
    currency = None
    async for row in crm.query("transactioncurrencies", select=["transactioncurrencyid"], top=1):
        currency = uuid.UUID(row["transactioncurrencyid"])
    assert currency is not None  # noqa: S101 - the sandbox seeds its base currency
    price_list = await crm.create(
        "pricelevels",
        {
            "name": "Bench",
            "transactioncurrencyid@odata.bind": bind("transactioncurrencies", currency),
        },
    )
    context = crm_rules.CrmContext(me.user_id, currency, default_price_list_id=price_list)
    schedules = [
        await crm.create("uomschedules", {"name": f"Bench {code}", "baseuomname": code})
        for code in UNITS
    ]
    await crm_rules.load_base_units(crm, context, schedules)
    return Catalog(context, schedules)


def product_change_set(catalog: Catalog, n: int) -> ChangeSet:
    """One new product as the engine writes it (same body shape, same three operations)."""
    schedule = catalog.schedules[n % len(catalog.schedules)]
    values: dict[str, Any] = {"defaultuomscheduleid": schedule, "price": n % 97}
    values = crm_rules.product_insert_values(values, catalog.context)
    product_id = uuid.uuid4()
    body = {
        "productnumber": f"R{n:07d}", "name": f"Item {n}", "price": n % 97,
        "standardcost": 1, "currentcost": 1, "stockvolume": 0, "stockweight": 0,
        "vendorpartnumber": "", "quantityonhand": 0, "producttypecode": 1,
        "quantitydecimal": 2,
        "defaultuomscheduleid@odata.bind": bind("uomschedules", schedule),
        "defaultuomid@odata.bind": bind("uoms", values["defaultuomid"]),
        "transactioncurrencyid@odata.bind": bind(
            "transactioncurrencies", catalog.context.base_currency_id
        ),
        "pricelevelid@odata.bind": bind("pricelevels", values["pricelevelid"]),
    }  # fmt: skip
    ops: list[BatchOperation] = [create_op("products", body, id=product_id)]
    ops += crm_rules.product_follow_ups(
        product_id, values, catalog.context, is_insert=True, is_blocked=False, current_state=None
    )
    last = ops[-1]
    ops[-1] = replace(last, path=f"{last.path}?$select=modifiedon",
                      headers={**last.headers, **REPRESENTATION})  # fmt: skip
    return ChangeSet(ops)


def _batches(catalog: Catalog, products: int, batch_size: int) -> Iterator[list[ChangeSet]]:
    per_product = len(product_change_set(catalog, 0).operations)
    per_batch = max(1, batch_size // per_product)
    for start in range(0, products, per_batch):
        yield [
            product_change_set(catalog, n) for n in range(start, min(start + per_batch, products))
        ]


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time of a process so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def raw_ingest(
    base_url: str, *, products: int, batch_size: int, concurrency: int, sandbox_pid: int
) -> dict[str, Any]:
    """Create ``products`` products through ``$batch``; the rate counts products per second.

    Besides the wall-clock rate it reports the CPU seconds the sandbox and this client
    spent: on a shared machine the wall rate follows the load, the CPU cost does not.
    """
    sandbox, client = psutil.Process(sandbox_pid), psutil.Process()
    async with client_for(base_url) as crm:
        catalog = await _catalog(crm)
        batches = _batches(catalog, products, batch_size)
        failed = 0
        before = crm.stats.requests

        async def worker() -> None:
            nonlocal failed
            for group in batches:  # one shared generator: each batch is built just in time
                results = await crm.batch(group)
                failed += sum(not r.is_ok for r in results)

        started = time.perf_counter()
        cpu_before = cpu_seconds(sandbox), cpu_seconds(client)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        sandbox_cpu = cpu_seconds(sandbox) - cpu_before[0]
        client_cpu = cpu_seconds(client) - cpu_before[1]
        return {
            "raw_products": products,
            "raw_seconds": round(seconds, 2),
            "raw_records_per_second": round(products / seconds, 1),
            "raw_operations_per_second": round(3 * products / seconds, 1),
            "raw_requests": crm.stats.requests - before,
            "raw_failed_operations": failed,
            "raw_sandbox_cpu_ms_per_record": round(1000 * sandbox_cpu / products, 3),
            "raw_client_cpu_ms_per_record": round(1000 * client_cpu / products, 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500, help="operations per $batch")
    parser.add_argument("--concurrency", type=int, default=4, help="$batch requests in flight")
    args = parser.parse_args()
    port = _free_port()
    process = _start_sandbox(port)
    try:
        figures = asyncio.run(
            raw_ingest(
                f"http://127.0.0.1:{port}", products=args.products,
                batch_size=args.batch_size, concurrency=args.concurrency,
                sandbox_pid=process.pid,
            )
        )  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=10)
    settings = {"batch_size": args.batch_size, "concurrency": args.concurrency}
    print(json.dumps({"bench": "dataverse", **settings, **figures}))


if __name__ == "__main__":
    main()
