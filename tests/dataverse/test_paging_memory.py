"""Paging through 20,000 rows holds one page at a time.

The bound is on memory, not time: tracemalloc's peak while iterating every row (all
columns) must stay under a size that holding the rows would far exceed. Measured here:
~3 MB peak while paging by 500, ~33 MB to hold the 20,000 rows as dicts.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from app.dataverse import DataverseClient, create_op
from tests.fixtures.sandbox import RunningSandbox

ROWS = 20_000
PAGE_SIZE = 500
PEAK_BOUND_BYTES = 8 * 1024 * 1024  # generous: one page here plus one in the sandbox


async def _seed(crm: DataverseClient, sandbox: RunningSandbox) -> None:
    def account(n: int) -> dict[str, str]:
        return {"name": f"Account {n:05d} " + "x" * 60, "accountnumber": f"A{n:05d}",
                "telephone1": "+1 555 0100", "emailaddress1": f"a{n}@example.com"}  # fmt: skip

    batches = [
        [create_op("accounts", account(n)) for n in range(start, start + 1000)]
        for start in range(0, ROWS, 1000)
    ]
    for results in await asyncio.gather(*(crm.batch(items) for items in batches)):
        assert all(r.is_ok for r in results)
    assert sandbox.state.count("accounts") == ROWS


async def test_paging_20000_rows_in_constant_memory(
    crm: DataverseClient, dv_sandbox: RunningSandbox
) -> None:
    await _seed(crm, dv_sandbox)
    gc.collect()
    tracemalloc.start()
    try:
        count = 0
        last = ""
        is_ordered = True
        async for row in crm.query("accounts", orderby="accountnumber", page_size=PAGE_SIZE):
            is_ordered = is_ordered and row["accountnumber"] > last
            last = row["accountnumber"]
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == ROWS
    assert is_ordered and last == f"A{ROWS - 1:05d}"  # every row once, in order, no repeats
    assert peak < PEAK_BOUND_BYTES, f"peak {peak / 1e6:.1f} MB while paging"
