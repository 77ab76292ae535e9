"""Web console page times with 100,000 items and 10,000 sync log rows on SQLite.

    .venv/bin/python bench/console.py [--items 100000] [--runs 10000] [--repeat 20] [--keep DIR]

Seeds a fresh SQLite database with bench/odata.py's availability data (items, ledger,
open orders), the default mappings, a coupling per item (every 50th failed, every 200th
skipped), and ``--runs`` sync log rows with two failed records each. Then signs in to the
real app in-process (httpx over ASGI, so the figure is the server's time plus a fraction of
a millisecond) and times every console page, each ``--repeat`` times after two warm-up
requests. Prints one JSON object: per page the median, p95 and worst wall milliseconds, the
median and worst CPU milliseconds of the process (all its threads: on a shared, loaded
machine the wall time also counts waiting for a core), and the number of SQL statements one
request ran (a constant count is the "no N+1" check). Never asserts timings; the target is
under 100 ms per page. ``--keep DIR --reuse`` measures an earlier seeded database again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NOW = "2026-01-15 12:00:00.000000"
PASSWORD = "bench password 123"  # noqa: S105 - a throwaway bench database


async def _mappings_and_admin(database_url: str, data_dir: Path) -> None:
    from app.auth import users
    from app.connection import connection_setup, defaults
    from app.db import create_engine, create_sessionmaker, session_scope
    from app.models.security import Role
    from app.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url)
    engine = create_engine(database_url)
    async with session_scope(create_sessionmaker(engine)) as session:
        await users.create_user(
            session, user_name="admin", roles=[Role.integration_admin], password=PASSWORD
        )
        setup = await connection_setup.get_connection_setup(session, settings)
        await defaults.recreate_default_setup(session, setup=setup)
    await engine.dispose()


def _seed_log(path: Path, n_runs: int) -> dict[str, int]:
    db = sqlite3.connect(path)
    items = db.execute("SELECT system_id, id FROM item ORDER BY id").fetchall()
    audit = (NOW, NOW, "bench")
    db.executemany(
        "INSERT INTO integration_record (system_id, created_at, modified_at, modified_by,"
        " table_name, integration_id, crm_table, crm_id, last_synch_result,"
        " last_synch_crm_result, skipped, statistics_uploaded)"
        " VALUES (?,?,?,?,'item',?,'product',?,'success',?,?,0)",
        (
            (uuid.uuid4().hex, *audit, system_id, uuid.uuid4().hex,
             "failure" if n % 50 == 0 else "success", int(n % 200 == 0))
            for n, (system_id, _id) in enumerate(items)
        ),
    )  # fmt: skip
    mappings = [row[0] for row in db.execute("SELECT name FROM integration_table_mapping")]
    jobs = []
    for n in range(n_runs):
        minute = f"2026-01-{1 + n // 1440 % 28:02d} {n // 60 % 24:02d}:{n % 60:02d}:00.000000"
        jobs.append((uuid.uuid4().hex, *audit, mappings[n % len(mappings)], "synchronization",
                     "to_crm" if n % 2 else "from_crm", minute, minute, n % 7, 2))  # fmt: skip
    db.executemany(
        "INSERT INTO integration_synch_job (system_id, created_at, modified_at, modified_by,"
        " mapping_name, type, direction, started_at, finished_at, inserted, modified, deleted,"
        " unchanged, skipped, failed, coupled, uncoupled, message)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,0,0,0,0,?,0,0,'')",
        jobs,
    )
    db.executemany(
        "INSERT INTO integration_synch_job_error (system_id, created_at, modified_at,"
        " modified_by, job_id, source_table, source_id, destination_table, destination_id,"
        " message, detail, at) VALUES (?,?,?,?,?,'item',?,'product','',?,'',?)",
        (
            (uuid.uuid4().hex, *audit, job[0], str(uuid.UUID(items[(i * 2 + k) % len(items)][0])),
             "The unit of measure PCS is not coupled to a Dynamics 365 Sales record.", NOW)
            for i, job in enumerate(jobs) for k in range(2)
        ),
    )  # fmt: skip
    db.commit()
    db.close()
    return {"couplings": len(items), "sync_jobs": n_runs, "sync_job_errors": 2 * n_runs}


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: Any) -> None:
        self.count += 1


async def _measure(database_url: str, data_dir: Path, repeat: int) -> dict[str, Any]:
    import httpx
    from sqlalchemy import event

    from app.logs import configure_logging
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(
        data_dir=data_dir, database_url=database_url, redis_url="", log_level="WARNING"
    )
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    app = create_app(settings, should_migrate=False)
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        counter = StatementCounter()
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", counter)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            form = (await http.get("/sign-in")).text
            token = re.search(r'name="sign_in_token" value="([^"]+)"', form)
            assert token is not None
            form_data = {"username": "admin", "password": PASSWORD, "sign_in_token": token.group(1)}
            signed = await http.post("/sign-in", data=form_data)
            assert signed.status_code == 303, signed.text
            for name, path in await _pages(http):
                times, cpu = [], []
                for attempt in range(repeat + 2):
                    counter.count = 0
                    started, started_cpu = time.perf_counter(), time.process_time()
                    answer = await http.get(path)
                    elapsed = (time.perf_counter() - started) * 1000
                    used = (time.process_time() - started_cpu) * 1000  # every thread's CPU
                    assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
                    if attempt >= 2:
                        times.append(elapsed)
                        cpu.append(used)
                times.sort()
                results[name] = {
                    "path": path, "median_ms": round(statistics.median(times), 1),
                    "p95_ms": round(times[int(len(times) * 0.95) - 1], 1),
                    "max_ms": round(times[-1], 1),
                    "cpu_median_ms": round(statistics.median(cpu), 1),
                    "cpu_max_ms": round(max(cpu), 1), "sql_statements": counter.count,
                }  # fmt: skip
    return results


async def _pages(http: Any) -> list[tuple[str, str]]:
    log = (await http.get("/sync-log")).text
    older = re.search(r'href="/sync-log\?([^"]*after=\d+)"', log)
    run = re.search(r'href="/sync-log/([0-9a-f-]{36})"', log)
    items = (await http.get("/couplings?mapping=ITEM-PRODUCT")).text
    record = re.search(r'href="(/couplings/ITEM-PRODUCT/record/[0-9a-f-]{36})"', items)
    after = re.search(r'href="/couplings\?([^"]*after=\d+)"', items)
    item = re.search(r'href="/availability/(\d+)"', (await http.get("/availability")).text)
    assert older and run and record and after and item
    return [
        ("overview", "/"),
        ("sync_log", "/sync-log"),
        ("sync_log_page_2", "/sync-log?" + older.group(1).replace("&amp;", "&")),
        ("sync_log_filtered", "/sync-log?mapping=ITEM-PRODUCT&direction=to_crm&status=with_errors"),
        ("sync_log_by_time", "/sync-log?started_from=2026-01-03&started_until=2026-01-04"),
        ("sync_run_errors", f"/sync-log/{run.group(1)}"),
        ("couplings_attention", "/couplings"),
        ("couplings_items", "/couplings?mapping=ITEM-PRODUCT"),
        ("couplings_items_page_2", "/couplings?" + after.group(1).replace("&amp;", "&")),
        ("couplings_search", "/couplings?mapping=ITEM-PRODUCT&q=Item+9999"),
        ("couplings_skipped", "/couplings?mapping=ITEM-PRODUCT&state=skipped"),
        ("coupling_record", record.group(1)),
        ("mappings", "/mappings"),
        ("mapping", "/mappings/ITEM-PRODUCT"),
        ("filter_check", "/mappings/ITEM-PRODUCT/check-filter?field=table_filter"
         "&table_filter=blocked+eq+false"),
        ("jobs", "/jobs"),
        ("users", "/users"),
        ("connection", "/connection"),
        ("setup", "/setup"),
        ("availability", "/availability"),
        ("availability_search", "/availability?q=Item+4242"),
        ("availability_item", f"/availability/{item.group(1)}"),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the database left in --keep, no seeding"
    )
    args = parser.parse_args()
    from app.logs import configure_logging

    configure_logging(level="WARNING")  # stdout carries the JSON only
    work = args.keep or Path(tempfile.mkdtemp(prefix="salesbridge-console-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "console.db"
    database_url = f"sqlite+aiosqlite:///{path}"
    started = time.perf_counter()
    seeded: dict[str, int] = {}
    if not (args.reuse and path.exists()):
        path.unlink(missing_ok=True)
        from bench.odata_seed import seed_sqlite  # the OData bench's data, the same way

        seeded = seed_sqlite(path, args.items / 100_000)
        asyncio.run(_mappings_and_admin(database_url, work))
        seeded.update(_seed_log(path, args.runs))
    seed_seconds = round(time.perf_counter() - started, 1)
    pages = asyncio.run(_measure(database_url, work, args.repeat))
    worst = max(page["p95_ms"] for page in pages.values())
    worst_cpu = max(page["cpu_max_ms"] for page in pages.values())
    print(json.dumps({"seeded": seeded, "seed_seconds": seed_seconds, "database": "sqlite",
                      "worst_p95_ms": worst, "worst_cpu_ms": worst_cpu, "pages": pages},
                     indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
