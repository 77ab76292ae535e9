"""The hand-written peers bench/odata.py compares the service with: the same queries over the
same tables, with nothing else (no auth, no ETags, no join, no options parsing).

SQLite: Starlette, stdlib ``sqlite3`` on the event loop thread, orjson. PostgreSQL: the same
with an asyncpg pool. Both send the quantities exactly, as the service does, in the cheapest
way each database allows: SQLite's scaled integers divided into doubles (exact up to 15
significant digits, all the seeded data); PostgreSQL's NUMERIC as its text written as a
raw JSON number.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

NAMES = ["ItemNo", "Description", "BaseUnitOfMeasure", "Inventory", "QtyOnSalesOrder",
         "QtyOnPurchaseOrder", "ProjectedAvailable", "Blocked", "LastModified"]  # fmt: skip
QUANTITIES = ("inventory", "qty_on_sales_order", "qty_on_purchase_order", "projected_available")
Query = Callable[[str, tuple[Any, ...]], Awaitable[list[Sequence[Any]]]]


def _app(query: Query, columns: str, placeholders: list[str]) -> Any:
    """The Starlette app; ``placeholders`` spells the dialect's parameters ($1 or ?)."""
    import orjson
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    one, two = placeholders
    select = f"SELECT {columns} FROM item_availability"  # noqa: S608

    async def rows(sql: str, args: tuple[Any, ...]) -> Response:
        found = [dict(zip(NAMES, r, strict=True)) for r in await query(sql, args)]
        return Response(orjson.dumps({"value": found}), media_type="application/json")

    async def handler(request: Request) -> Response:
        q = request.query_params
        if "key" in q:
            return await rows(f"{select} WHERE item_no = {one}", (q["key"],))
        if "prefix" in q:
            p = q["prefix"]
            sql = f"{select} WHERE item_no >= {one} AND item_no < {two} ORDER BY item_no LIMIT 50"
            return await rows(sql, (p, p[:-1] + chr(ord(p[-1]) + 1)))
        if "lt" in q:
            sql = (
                f"{select} WHERE projected_available < {one}"
                " ORDER BY projected_available, item_no LIMIT 100"
            )
            return await rows(sql, (int(q["lt"]),))
        if "count" in q:
            count = (await query("SELECT count(*) FROM item_availability", ()))[0][0]
            return Response(str(count), media_type="text/plain")
        sql = f"{select} WHERE item_no > {one} ORDER BY item_no LIMIT 1000"
        return await rows(sql, (q.get("after", ""),))

    return Starlette(routes=[Route("/raw", handler)])


def serve_sqlite(db_path: str, port: int) -> None:

    db = sqlite3.connect(db_path, check_same_thread=False)
    scaled = ", ".join(f"{c} / 100000.0" for c in QUANTITIES)
    columns = f"item_no, description, base_unit_of_measure, {scaled}, blocked, modified_at"

    async def query(sql: str, args: tuple[Any, ...]) -> list[Sequence[Any]]:
        # ``lt`` compares the scaled integers: the bound is scaled the same way.
        if "projected_available <" in sql:
            args = (args[0] * 100_000,)
        return db.execute(sql, args).fetchall()

    _run(_app(query, columns, ["?", "?"]), port)


def serve_postgres(dsn: str, port: int) -> None:
    import asyncpg
    import orjson

    fragment = orjson.Fragment
    texts = ", ".join(f"CAST(trim_scale({c}) AS TEXT)" for c in QUANTITIES)
    columns = f"item_no, description, base_unit_of_measure, {texts}, blocked, modified_at"
    pool: list[Any] = []

    async def query(sql: str, args: tuple[Any, ...]) -> list[Sequence[Any]]:
        if not pool:
            pool.append(await asyncpg.create_pool(dsn, min_size=4, max_size=8))
        records = await pool[0].fetch(sql, *args)
        if not records or len(records[0]) == 1:
            return records  # type: ignore[no-any-return]
        return [
            (r[0], r[1], r[2], fragment(r[3]), fragment(r[4]), fragment(r[5]), fragment(r[6]),
             r[7], r[8])
            for r in records
        ]  # fmt: skip

    _run(_app(query, columns, ["$1", "$2"]), port)


def _run(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")  # fmt: skip
