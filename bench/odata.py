"""OData item availability benchmark. Prints one JSON line.

    .venv/bin/python bench/odata.py [--database sqlite|postgresql] [--scale 0.1] [--seconds 4]
                                    [--keep DIR] [--postgres-url URL] [--redis-url URL]

Seeds the database (bench/odata_seed.py: 100,000 items, 1,000,000 ledger entries and 20,000
open order lines times --scale; SQLite in a temporary directory, or a ``salesbridge_bench``
database next to the suite's PostgreSQL, 127.0.0.1:5432 by default) with the availability
triggers off, then rebuilds the aggregates the way the migration does. Runs
``salesbridge serve`` (the real command; embedded worker off, Redis from --redis-url) pinned
to CPU 0 and drives it from CPU 1 with a small raw-socket HTTP/1.1 load generator (8
keep-alive connections): key lookup, startswith(ItemNo,'1234') + $top=50,
ProjectedAvailable lt 10 ordered + $top=100, /$count, and a full walk of every item with
odata.maxpagesize=1000. The same mix runs against a hand-written peer on the same database
(bench/odata_peers.py: Starlette + stdlib sqlite3, or + asyncpg; also on CPU 0) and the
ratio is reported: the two servers take turns in one-second slices (walks alternate too),
so on a shared machine both see the same background load. It also times the numeric query
as a grouped query over the ledger, the alternative to the trigger-kept aggregate. Reports
the machine's load average before and after. Never asserts timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CONCURRENCY = 8


def seed(path: Path, scale: float) -> dict[str, int]:
    """SQLite seeding (also bench/odata_load.py's)."""
    from bench.odata_seed import seed_sqlite

    return seed_sqlite(path, scale)


def create_reader(path: Path, data_dir: Path) -> str:
    from bench.odata_seed import create_sqlite_reader

    return create_sqlite_reader(path, data_dir)


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


def start_server(
    args: list[str],
    port: int,
    *,
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """This script in ``--serve``/``--serve-raw`` mode, or ``command``; pinned to CPU 0."""
    argv = command or [sys.executable, __file__, *args, "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    os.sched_setaffinity(process.pid, {0})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {argv}")
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


def start_salesbridge(database_url: str, data_dir: Path, port: int, redis_url: str) -> Any:
    """``salesbridge serve`` as people run it, with the embedded worker off."""
    env = {
        **os.environ,
        "SALESBRIDGE_DATA_DIR": str(data_dir),
        "SALESBRIDGE_DATABASE_URL": database_url,
        "SALESBRIDGE_REDIS_URL": redis_url,
        "SALESBRIDGE_EMBEDDED_WORKER": "false",
        "SALESBRIDGE_LOG_LEVEL": "WARNING",
        "SALESBRIDGE_LOG_FORMAT": "json",
    }
    command = [str(Path(sys.executable).with_name("salesbridge")), "serve", "--port", str(port)]
    return start_server([], port, command=command, env=env)


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


GROUPED = (
    "SELECT no, projected FROM (SELECT i.no, COALESCE(l.q, 0) - COALESCE(s.q, 0)"
    " + COALESCE(p.q, 0) AS projected FROM item i"
    " LEFT JOIN (SELECT item_no, SUM(quantity) q FROM item_ledger_entry"
    " GROUP BY item_no) l ON l.item_no = i.no"
    " LEFT JOIN (SELECT no, SUM(quantity - quantity_shipped) q FROM sales_line"
    " WHERE type = 'item' AND document_type = 'order' GROUP BY no) s ON s.no = i.no"
    " LEFT JOIN (SELECT item_no, SUM(outstanding_quantity) q FROM purchase_line"
    " GROUP BY item_no) p ON p.item_no = i.no) AS g"
    " WHERE projected < {ten} ORDER BY projected, no LIMIT 100"
)
AGGREGATE = (
    "SELECT item_no, projected_available FROM item_availability"
    " WHERE projected_available < {ten} ORDER BY projected_available, item_no LIMIT 100"
)


def grouped_vs_aggregate(run: Callable[[str], object], ten: int) -> dict[str, float]:
    """The numeric query from a grouped query over the sources vs from the aggregate."""
    timings = {}
    for name, sql in (("grouped_query_ms", GROUPED), ("aggregate_query_ms", AGGREGATE)):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            run(sql.format(ten=ten))
            runs.append(time.perf_counter() - started)
        timings[name] = round(min(runs) * 1000, 3)
    return timings


def _sqlite_timings(path: Path) -> dict[str, float]:
    db = sqlite3.connect(path)
    try:  # ExactDecimal keeps SQLite quantities as integers times 10**5
        return grouped_vs_aggregate(lambda sql: db.execute(sql).fetchall(), 10 * 100_000)
    finally:
        db.close()


def _postgres_timings(url: str) -> dict[str, float]:
    import asyncpg

    from bench.odata_seed import dsn

    async def timings() -> dict[str, float]:
        connection = await asyncpg.connect(dsn(url))
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                None,
                lambda: grouped_vs_aggregate(
                    lambda sql: asyncio.run_coroutine_threadsafe(
                        connection.fetch(sql), loop
                    ).result(),
                    10,
                ),
            )
        finally:
            await connection.close()

    return asyncio.run(timings())


@dataclass
class Setup:
    """The seeded database and how each server is started on it."""

    sizes: dict[str, int]
    seed_seconds: float
    authorization: str
    database_url: str
    peer_args: list[str]
    timings: dict[str, float]


def _prepare(args: argparse.Namespace, work: Path, data_dir: Path) -> Setup:
    from bench import odata_seed

    started = time.perf_counter()
    if args.database == "sqlite":
        db_path = work / "bench.db"
        sizes = (
            odata_seed.seed_sqlite(db_path, args.scale) if not db_path.exists() else {"reused": 1}
        )
        seconds = round(time.perf_counter() - started, 1)
        return Setup(sizes, seconds, odata_seed.create_sqlite_reader(db_path, data_dir),
                     f"sqlite+aiosqlite:///{db_path}", ["--serve-raw", str(db_path)],
                     _sqlite_timings(db_path))  # fmt: skip
    url = odata_seed.postgres_database_url(args.postgres_url, args.postgres_database)
    if args.keep and (work / "postgres-seeded").exists():
        sizes = {"reused": 1}
    else:
        sizes = odata_seed.seed_postgres(args.postgres_url, args.postgres_database, args.scale)
        (work / "postgres-seeded").write_text(url)
    seconds = round(time.perf_counter() - started, 1)
    return Setup(sizes, seconds, odata_seed.create_postgres_reader(url, data_dir), url,
                 ["--serve-raw-postgres", odata_seed.dsn(url)], _postgres_timings(url))  # fmt: skip


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep the database here")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "SALESBRIDGE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--postgres-database", default="salesbridge_bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--serve", nargs=2, metavar=("DB", "DATA_DIR"))
    parser.add_argument("--serve-raw", metavar="DB")
    parser.add_argument("--serve-raw-postgres", metavar="DSN")
    parser.add_argument("--port", type=int, default=0)
    return parser.parse_args()  # fmt: skip


def main() -> None:
    args = _arguments()
    if args.serve:
        serve_app(args.serve[0], args.serve[1], args.port)
        return
    if args.serve_raw or args.serve_raw_postgres:
        from bench import odata_peers

        if args.serve_raw:
            odata_peers.serve_sqlite(args.serve_raw, args.port)
        else:
            odata_peers.serve_postgres(args.serve_raw_postgres, args.port)
        return
    os.sched_setaffinity(0, {1})
    work = args.keep or Path(tempfile.mkdtemp(prefix="odata-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data_dir = work / "data"
    setup = _prepare(args, work, data_dir)
    result: dict[str, object] = {
        "benchmark": "odata", "database": args.database, "scale": args.scale, **setup.sizes,
        "seed_seconds": setup.seed_seconds, "concurrency": CONCURRENCY,
        "load_average_before": os.getloadavg(), **setup.timings,
    }  # fmt: skip
    auth = f"Authorization: {setup.authorization}\r\n"
    n_items = int(100_000 * args.scale)
    processes = []
    try:
        ours = start_salesbridge(setup.database_url, data_dir, 18431, args.redis_url)
        processes.append(ours)
        peer = start_server(setup.peer_args, 18432)
        processes.append(peer)
        targets = {
            "salesbridge": Target(18431, psutil.Process(ours.pid), odata=True, n_items=n_items),
            "raw_peer": Target(18432, psutil.Process(peer.pid), odata=False, n_items=n_items),
        }
        result.update(asyncio.run(measure(targets, auth, args.seconds)))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    result["load_average_after"] = os.getloadavg()
    mine, theirs = result["salesbridge"], result["raw_peer"]
    result["ratio_to_raw_peer"] = {
        kind: round(mine[kind]["req_s"] / theirs[kind]["req_s"], 3)  # type: ignore[index]
        for kind in ("key", "startswith_top", "numeric_filter_order", "count")
    } | {"full_paging": round(mine["full_paging"]["rows_s"] / theirs["full_paging"]["rows_s"], 3)}  # type: ignore[index]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
