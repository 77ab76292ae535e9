"""OData item availability benchmark. Prints one JSON line.

    .venv/bin/python bench/odata.py [--scale 0.1] [--seconds 4] [--keep DIR]

Seeds SQLite with 100,000 items, 1,000,000 ledger entries and 20,000 open order lines (times
--scale) using bulk inserts with the availability triggers off, then rebuilds the aggregates
the way the migration does. Serves the real app with one uvicorn process pinned to CPU 0 and
drives it from CPU 1 with a small raw-socket HTTP/1.1 load generator (8 keep-alive
connections): key lookup, startswith(ItemNo,'1234') + $top=50, ProjectedAvailable lt 10
ordered + $top=100, /$count, and a full walk of every item with odata.maxpagesize=1000. The
same mix runs against a hand-written peer (Starlette + stdlib sqlite3 + orjson, the same
tables, also on CPU 0) and the ratio is reported: the two servers take turns in one-second
slices (walks alternate too), so on a shared machine both see the same background load.
It also times the same numeric query as a grouped query over the ledger, the alternative
to the trigger-kept aggregate. Never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONCURRENCY = 8
LOCATIONS = ["", "BLUE", "RED", "GREEN"]
NOW = "2026-01-15 12:00:00.000000"


def seed(path: Path, scale: float) -> dict[str, int]:
    from sqlalchemy import create_engine

    from app.migrations import upgrade_database_sync
    from app.models import availability_triggers

    upgrade_database_sync(f"sqlite+aiosqlite:///{path}")
    n_items, n_ledger, n_lines = int(100_000 * scale), int(1_000_000 * scale), int(20_000 * scale)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        availability_triggers.uninstall(connection)
    rng = random.Random(7)
    db = sqlite3.connect(path)
    audit = (NOW, NOW, "bench")
    db.executemany(
        "INSERT INTO item (system_id, created_at, modified_at, modified_by, blocked, no, "
        "description, unit_price, unit_cost, unit_volume, gross_weight, vendor_no, vendor_item_no)"
        " VALUES (?,?,?,?,0,?,?,0,0,0,0,'','')",
        ((uuid.uuid4().hex, *audit, str(100_000 + n), f"Item {n}") for n in range(n_items)),
    )
    db.executemany(
        "INSERT INTO item_ledger_entry (system_id, created_at, modified_at, modified_by, entry_no,"
        " item_no, location_code, posting_date, entry_type, quantity, document_no)"
        " VALUES (?,?,?,?,?,?,?,'2026-01-01','purchase',?,'')",
        (
            (
                uuid.uuid4().hex,
                *audit,
                n,
                str(100_000 + n % n_items),
                LOCATIONS[n % 4],
                rng.randint(-3, 8),
            )
            for n in range(n_ledger)
        ),
    )
    db.execute(
        "INSERT INTO customer (system_id, created_at, modified_at, modified_by, no, name,"
        " phone, email, home_page, contact, primary_contact_no, payment_terms_code,"
        " shipment_method_code, shipping_agent_code, credit_limit_lcy, blocked, address,"
        " address_2, city, post_code, county, country_code)"
        " VALUES (?,?,?,?,'C1','','','','','','','','','',0,0,'','','','','','')",
        (uuid.uuid4().hex, *audit),
    )
    _seed_orders(db, rng, n_items, n_lines, audit)
    db.commit()
    db.close()
    with engine.begin() as connection:
        availability_triggers.install(connection)  # triggers back on + aggregates rebuilt
    engine.dispose()
    return {"items": n_items, "ledger_entries": n_ledger, "open_order_lines": n_lines}


def _seed_orders(
    db: sqlite3.Connection,
    rng: random.Random,
    n_items: int,
    n_lines: int,
    audit: tuple[str, str, str],
) -> None:
    header_columns = [row[1] for row in db.execute("PRAGMA table_info(sales_header)")]
    defaults = dict.fromkeys(header_columns, "")
    for numeric in ("payment_discount_pct", "invoice_discount_amount", "id"):
        defaults.pop(numeric, None)
    defaults.update(
        payment_discount_pct=0,
        invoice_discount_amount=0,
        status="open",
        document_type="order",
        sell_to_customer_no="C1",
        requested_delivery_date=None,
        last_shipment_date=None,
        modified_by="bench",
        created_at=NOW,
        modified_at=NOW,
    )
    names = list(defaults)
    rows = []
    for n in range(max(1, n_lines // 10)):
        values = dict(defaults, no=f"SO{n:06d}", system_id=uuid.uuid4().hex)
        rows.append(tuple(values[c] for c in names))
    db.executemany(
        f"INSERT INTO sales_header ({','.join(names)}) VALUES ({','.join('?' * len(names))})",  # noqa: S608
        rows,
    )
    db.executemany(
        "INSERT INTO sales_line (system_id, created_at, modified_at, modified_by, document_type,"
        " document_no, line_no, type, no, description, location_code, quantity, quantity_shipped,"
        " quantity_invoiced, unit_of_measure_code, unit_price, line_discount_amount, amount,"
        " amount_including_vat) VALUES (?,?,?,?,'order',?,?,'item',?,'',?,?,?,0,'',0,0,0,0)",
        (
            (
                uuid.uuid4().hex,
                *audit,
                f"SO{n // 10:06d}",
                (n % 10 + 1) * 10000,
                str(100_000 + rng.randrange(n_items)),
                LOCATIONS[n % 4],
                rng.randint(1, 20),
                rng.randint(0, 1),
            )
            for n in range(n_lines)
        ),
    )


def create_reader(path: Path, data_dir: Path) -> str:
    """A product-availability user with an access key; returns the Basic header value."""
    from app.auth import access_keys
    from app.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=f"sqlite+aiosqlite:///{path}")
    issued = access_keys.issue_key(settings.access_key_pepper.get_secret_value())
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("DELETE FROM user_account WHERE user_name = 'crm'")  # a reused database
    db.execute(
        "INSERT INTO user_account (system_id, created_at, modified_at, modified_by,"
        " user_name, full_name, email, roles, state) VALUES (?,?,?,?,'crm','','',"
        "'product-availability','enabled')",
        (uuid.uuid4().hex, NOW, NOW, "bench"),
    )
    user_id = db.execute("SELECT id FROM user_account WHERE user_name='crm'").fetchone()[0]
    db.execute(
        "INSERT INTO web_service_access_key (system_id, created_at, modified_at,"
        " modified_by, user_id, key_id, key_digest) VALUES (?,?,?,?,?,?,?)",
        (uuid.uuid4().hex, NOW, NOW, "bench", user_id, issued.key_id, issued.digest),
    )
    db.commit()
    db.close()
    return "Basic " + base64.b64encode(f"crm:{issued.key}".encode()).decode()


# -- servers --------------------------------------------------------------------------------
def serve_app(db_path: str, data_dir: str, port: int) -> None:
    import uvicorn

    from app.logs import configure_logging
    from app.main import create_app
    from app.settings import Settings

    configure_logging(level="WARNING", fmt="json")  # as `salesbridge serve` does, quieter
    settings = Settings(
        data_dir=Path(data_dir),
        database_url=f"sqlite+aiosqlite:///{db_path}",
        log_level="WARNING",
        embedded_worker=False,
    )
    uvicorn.run(
        create_app(settings, should_migrate=False),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def serve_raw(db_path: str, port: int) -> None:
    """The hand-written peer: Starlette, stdlib sqlite3 on the event loop thread, orjson."""
    import orjson
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    db = sqlite3.connect(db_path, check_same_thread=False)
    columns = (
        "item_no, description, base_unit_of_measure, inventory, qty_on_sales_order,"
        " qty_on_purchase_order, projected_available, blocked, modified_at"
    )
    names = [
        "ItemNo",
        "Description",
        "BaseUnitOfMeasure",
        "Inventory",
        "QtyOnSalesOrder",
        "QtyOnPurchaseOrder",
        "ProjectedAvailable",
        "Blocked",
        "LastModified",
    ]

    def rows(sql: str, args: tuple[object, ...]) -> Response:
        found = [dict(zip(names, r, strict=True)) for r in db.execute(sql, args)]
        return Response(orjson.dumps({"value": found}), media_type="application/json")

    async def handler(request: Request) -> Response:
        q = request.query_params
        if "key" in q:
            return rows(f"SELECT {columns} FROM item_availability WHERE item_no = ?", (q["key"],))  # noqa: S608
        if "prefix" in q:
            p = q["prefix"]
            return rows(
                f"SELECT {columns} FROM item_availability"  # noqa: S608
                " WHERE item_no >= ? AND item_no < ? ORDER BY item_no LIMIT 50",
                (p, p[:-1] + chr(ord(p[-1]) + 1)),
            )
        if "lt" in q:
            return rows(
                f"SELECT {columns} FROM item_availability WHERE projected_available < ?"  # noqa: S608
                " ORDER BY projected_available, item_no LIMIT 100",
                (float(q["lt"]),),
            )
        if "count" in q:
            count = db.execute("SELECT count(*) FROM item_availability").fetchone()[0]
            return Response(str(count), media_type="text/plain")
        after = q.get("after", "")
        return rows(
            f"SELECT {columns} FROM item_availability WHERE item_no > ?"  # noqa: S608
            " ORDER BY item_no LIMIT 1000",
            (after,),
        )

    app = Starlette(routes=[Route("/raw", handler)])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


def start_server(args: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, *args, "--port", str(port)])  # noqa: S603
    os.sched_setaffinity(process.pid, {0})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


# -- load generator -------------------------------------------------------------------------
class Connection:
    def __init__(self, port: int, headers: str) -> None:
        self.port, self.headers = port, headers

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def get(self, target: str, extra: str = "") -> tuple[int, bytes]:
        self.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.headers}{extra}\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return status, body


async def timed_requests(
    port: int, headers: str, make_target: object, seconds: float
) -> tuple[list[float], int, float]:
    """(latencies, errors, elapsed) for ``seconds`` of requests at CONCURRENCY."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        connection = Connection(port, headers)
        await connection.open()
        while time.perf_counter() < stop:
            started = time.perf_counter()
            status, _ = await connection.get(make_target())  # type: ignore[operator]
            latencies.append(time.perf_counter() - started)
            errors += status != 200
        connection.writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return latencies, errors, time.perf_counter() - began


def summary(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    latencies.sort()
    return {
        "req_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
        "errors": errors,
    }


async def full_paging(
    port: int, headers: str, *, odata: bool, process: psutil.Process
) -> tuple[int, float, list[int]]:
    """(rows, seconds, RSS after each page) for one walk over every item, 1,000 a page."""
    connection = Connection(port, headers)
    await connection.open()
    rows, rss = 0, []
    began = time.perf_counter()
    target: str | None = "/odata/v4/ItemAvailability" if odata else "/raw?after="
    while target is not None:
        status, body = await connection.get(target, "Prefer: odata.maxpagesize=1000\r\n")
        assert status == 200, body[:200]
        page = json.loads(body)
        rows += len(page["value"])
        rss.append(process.memory_info().rss)
        if odata:
            link = page.get("@odata.nextLink")
            target = link[link.index("/odata/") :] if link else None
        elif page["value"]:
            target = f"/raw?after={quote(page['value'][-1]['ItemNo'])}"
        else:
            target = None
    connection.writer.close()
    return rows, time.perf_counter() - began, rss


class Target:
    """One server under test: its port, process and the URL of each query kind."""

    def __init__(self, port: int, process: psutil.Process, *, odata: bool, n_items: int) -> None:
        self.port, self.process, self.odata = port, process, odata
        self.rng = random.Random(11)
        self.n_items = n_items

    def make(self, kind: str) -> Callable[[], str]:
        base, rng, odata = "/odata/v4/ItemAvailability", self.rng, self.odata

        def key() -> str:
            no = str(100_000 + rng.randrange(self.n_items))
            return f"{base}('{no}')" if odata else f"/raw?key={no}"

        def prefix() -> str:
            p = str(1000 + rng.randrange(min(self.n_items // 100, 1000) or 1))
            return (
                f"{base}?$filter=startswith(ItemNo,'{p}')&$top=50" if odata else f"/raw?prefix={p}"
            )

        def numeric() -> str:
            return (
                f"{base}?$filter=ProjectedAvailable%20lt%2010&$orderby=ProjectedAvailable&$top=100"
                if odata
                else "/raw?lt=10"
            )

        def count() -> str:
            return f"{base}/$count" if odata else "/raw?count=1"

        return {
            "key": key,
            "startswith_top": prefix,
            "numeric_filter_order": numeric,
            "count": count,
        }[kind]


KINDS = ("key", "startswith_top", "numeric_filter_order", "count")


async def measure(targets: dict[str, Target], headers: str, seconds: float) -> dict[str, Any]:
    """Every kind on every server, interleaved in one-second slices (then walks), so both
    servers see the same background load on this shared machine and the ratio is fair."""
    out: dict[str, dict[str, Any]] = {label: {} for label in targets}
    for target in targets.values():  # warm-up: caches, connections, pages
        await timed_requests(target.port, headers, target.make("key"), 1.0)
    rounds = max(1, round(seconds))
    for kind in KINDS:
        totals = {label: ([], 0, 0.0) for label in targets}
        for _ in range(rounds):
            for label, target in targets.items():
                found = await timed_requests(
                    target.port, headers, target.make(kind), seconds / rounds
                )
                lat, err, took = totals[label]
                totals[label] = (lat + found[0], err + found[1], took + found[2])
        for label, total in totals.items():
            out[label][kind] = summary(*total)
    walks = {label: [0, 0.0] for label in targets}
    rss: dict[str, list[int]] = {label: [] for label in targets}
    for _ in range(max(2, rounds // 2)):
        for label, target in targets.items():
            rows, took, pages = await full_paging(
                target.port, headers, odata=target.odata, process=target.process
            )
            rss[label].extend(pages)
            walks[label][0] += rows
            walks[label][1] += took
    for label in targets:
        out[label]["full_paging"] = {
            "rows": walks[label][0],
            "rows_s": round(walks[label][0] / walks[label][1]),
            "rss_mb_first_page": round(rss[label][0] / 2**20, 1),
            "rss_mb_last_page": round(rss[label][-1] / 2**20, 1),
        }
        out[label]["peak_rss_mb"] = round(max(rss[label]) / 2**20, 1)
    return out


def grouped_vs_aggregate(path: Path) -> dict[str, float]:
    """The numeric query from a grouped query over the sources vs from the aggregate."""
    db = sqlite3.connect(path)
    grouped = (
        "SELECT i.no, COALESCE(l.q, 0) - COALESCE(s.q, 0) + COALESCE(p.q, 0) AS projected"
        " FROM item i LEFT JOIN (SELECT item_no, SUM(quantity) q FROM item_ledger_entry"
        " GROUP BY item_no) l ON l.item_no = i.no"
        " LEFT JOIN (SELECT no, SUM(quantity - quantity_shipped) q FROM sales_line"
        " WHERE type = 'item' AND document_type = 'order' GROUP BY no) s ON s.no = i.no"
        " LEFT JOIN (SELECT item_no, SUM(outstanding_quantity) q FROM purchase_line"
        " GROUP BY item_no) p ON p.item_no = i.no"
        " WHERE projected < 10 ORDER BY projected, i.no LIMIT 100"
    )
    aggregate = (
        "SELECT item_no, projected_available FROM item_availability"
        " WHERE projected_available < 10 ORDER BY projected_available, item_no LIMIT 100"
    )
    timings = {}
    for name, sql in (("grouped_query_ms", grouped), ("aggregate_query_ms", aggregate)):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            db.execute(sql).fetchall()
            runs.append(time.perf_counter() - started)
        timings[name] = round(min(runs) * 1000, 3)
    db.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep the database here")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "DATA_DIR"))
    parser.add_argument("--serve-raw", metavar="DB")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.serve:
        serve_app(args.serve[0], args.serve[1], args.port)
        return
    if args.serve_raw:
        serve_raw(args.serve_raw, args.port)
        return
    os.sched_setaffinity(0, {1})
    work = args.keep or Path(tempfile.mkdtemp(prefix="odata-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path, data_dir = work / "bench.db", work / "data"
    started = time.perf_counter()
    sizes = seed(db_path, args.scale) if not db_path.exists() else {"reused": 1}
    seed_seconds = round(time.perf_counter() - started, 1)
    auth = f"Authorization: {create_reader(db_path, data_dir)}\r\n"
    n_items = int(100_000 * args.scale)
    result: dict[str, object] = {
        "benchmark": "odata",
        "scale": args.scale,
        **sizes,
        "seed_seconds": seed_seconds,
        "concurrency": CONCURRENCY,
    }
    result.update(grouped_vs_aggregate(db_path))
    servers = {
        "salesbridge": (["--serve", str(db_path), str(data_dir)], 18431, True),
        "raw_peer": (["--serve-raw", str(db_path)], 18432, False),
    }
    processes = []
    try:
        targets = {}
        for label, (server_args, port, odata) in servers.items():
            process = start_server(server_args, port)
            processes.append(process)
            targets[label] = Target(port, psutil.Process(process.pid), odata=odata, n_items=n_items)
        result.update(asyncio.run(measure(targets, auth, args.seconds)))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    ours, peer = result["salesbridge"], result["raw_peer"]
    result["ratio_to_raw_peer"] = {
        kind: round(ours[kind]["req_s"] / peer[kind]["req_s"], 3)  # type: ignore[index]
        for kind in ("key", "startswith_top", "numeric_filter_order", "count")
    } | {"full_paging": round(ours["full_paging"]["rows_s"] / peer["full_paging"]["rows_s"], 3)}  # type: ignore[index]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
