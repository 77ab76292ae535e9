"""OData service under many concurrent clients (issue #8, load). Prints one JSON line.

    .venv/bin/python bench/odata_load.py [--clients 32] [--seconds 60] [--scale 0.1] [--kinds K,..]
    .venv/bin/python bench/odata_load.py --during-sync 3000 [--seconds-max 300]

Default mode: seeds SQLite the way bench/odata.py does (100,000 items x --scale), serves the
real app in one uvicorn process (CPU 0) and drives it from CPU 1 with --clients keep-alive
connections for --seconds. Each client cycles through the mix: key lookup,
``startswith(ItemNo,p)`` + ``$top=50``, ``ProjectedAvailable lt 10`` ordered + ``$top=100``,
``/$count``, and the next page of its own full walk (``odata.maxpagesize=1000``).
``--kinds`` narrows the mix (e.g. without paging, whose 1,000-row pages otherwise take
most of the server's time). Reports requests, errors, p50/p99 per kind, peak server RSS.

``--during-sync N``: N items in a fresh database, the sandbox as the CRM, the API
(``salesbridge serve``) and two ``salesbridge worker`` processes on Redis (--redis-url), a
full sync started over REST; while it runs, a few clients read REST lists, the sync
progress and the OData service; reports their latencies and the sync's duration.

``run_load`` is also what tests/load drives (with no timing asserts); figures come from here.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlmodel import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KINDS = ("key", "startswith_top", "numeric_filter_order", "count", "paging")
SERVICE = "/odata/v4/ItemAvailability"
PAGE_SIZE = 1000
NUMERIC_FILTER = "ProjectedAvailable%20lt%2010"
MAX_ERROR_SAMPLES = 5


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after a failure."""

    def __init__(self, port: int, headers: str) -> None:
        self.port, self.headers = port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str, extra: str = "") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        try:
            request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.headers}{extra}\r\n"
            self.writer.write(request.encode())
            head = await self.reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await self.reader.readexactly(length) if length else b""
            return int(head[9:12]), body
        except (OSError, asyncio.IncompleteReadError):
            self.close()
            raise

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)
    sent: int = 0
    paging_rows: int = 0
    walks: int = 0

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.samples) < MAX_ERROR_SAMPLES:
            self.samples.append(f"{kind}: {what[:200]}")


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000, 2)


def summarise(latencies: dict[str, list[float]], errors: dict[str, int]) -> dict[str, Any]:
    return {
        kind: {
            "requests": len(found),
            "errors": errors.get(kind, 0),
            "p50_ms": percentile(found, 0.5) if found else None,
            "p99_ms": percentile(found, 0.99) if found else None,
        }
        for kind, found in latencies.items()
    }


class Client:
    """One simulated CRM client: its connection, its walk, the mix in turn."""

    def __init__(
        self, port: int, headers: str, numbers: Sequence[str], seed: int, kinds: Sequence[str]
    ) -> None:
        self.connection = Connection(port, headers)
        self.numbers = numbers
        self.kinds = kinds
        self.rng = random.Random(seed)
        self.next_page: str | None = None
        self.turn = seed % len(kinds)

    def target(self, kind: str) -> str:
        if kind == "key":
            return f"{SERVICE}('{quote(self.rng.choice(self.numbers))}')"
        if kind == "startswith_top":
            prefix = self.rng.choice(self.numbers)[:-2] or "1"
            return f"{SERVICE}?$filter=startswith(ItemNo,'{quote(prefix)}')&$top=50"
        if kind == "numeric_filter_order":
            return f"{SERVICE}?$filter={NUMERIC_FILTER}&$orderby=ProjectedAvailable&$top=100"
        if kind == "count":
            return f"{SERVICE}/$count"
        return self.next_page or SERVICE

    async def one(self, tally: Tally) -> None:
        kind = self.kinds[self.turn % len(self.kinds)]
        self.turn += 1
        tally.sent += 1
        extra = f"Prefer: odata.maxpagesize={PAGE_SIZE}\r\n" if kind == "paging" else ""
        started = time.perf_counter()
        try:
            status, body = await self.connection.get(self.target(kind), extra)
        except (OSError, asyncio.IncompleteReadError) as exc:
            tally.error(kind, repr(exc))
            return
        tally.latencies[kind].append(time.perf_counter() - started)
        problem = self.check(kind, status, body, tally)
        if problem:
            tally.error(kind, problem)

    def check(self, kind: str, status: int, body: bytes, tally: Tally) -> str | None:
        if status != 200:
            return f"{status} {body[:150]!r}"
        if kind == "count":
            return None if body.strip().isdigit() else f"count {body[:50]!r}"
        payload = json.loads(body)
        if kind == "key":
            return None if payload.get("ItemNo") else f"key {body[:100]!r}"
        if not isinstance(payload.get("value"), list):
            return f"{kind} {body[:100]!r}"
        if kind == "paging":
            tally.paging_rows += len(payload["value"])
            link = payload.get("@odata.nextLink")
            self.next_page = link[link.index("/odata/") :] if link else None
            tally.walks += link is None
        return None


async def run_load(
    port: int,
    authorization: str,
    numbers: Sequence[str],
    *,
    clients: int = 32,
    seconds: float = 60.0,
    kinds: Sequence[str] = KINDS,
    on_tick: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """``clients`` connections for ``seconds``; returns the figures (nothing is asserted)."""
    headers = f"Authorization: {authorization}\r\n"
    tally = Tally()
    stop = time.perf_counter() + seconds

    async def drive(client: Client) -> None:
        while time.perf_counter() < stop:
            await client.one(tally)
        client.connection.close()

    async def ticker() -> None:
        while on_tick is not None and time.perf_counter() < stop:
            on_tick()
            await asyncio.sleep(0.5)

    began = time.perf_counter()
    pool = [Client(port, headers, numbers, seed, kinds) for seed in range(clients)]
    await asyncio.gather(ticker(), *(drive(client) for client in pool))
    elapsed = time.perf_counter() - began
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": tally.sent,
        "errors": sum(tally.errors.values()),
        "req_s": round(tally.sent / elapsed, 1),
        "kinds": summarise({k: tally.latencies[k] for k in kinds}, tally.errors),
        "paging_rows": tally.paging_rows,
        "full_walks": tally.walks,
        "error_samples": tally.samples,
    }


# -- the API while a full sync runs in worker processes ------------------------------------
BIN = Path(sys.executable).parent
DURING_SYNC_KINDS = ("rest_items", "rest_progress", "odata_key", "odata_startswith")


def environment(database_url: str, redis_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(
        SALESBRIDGE_DATABASE_URL=database_url, SALESBRIDGE_REDIS_URL=redis_url,
        SALESBRIDGE_DATA_DIR=str(data_dir), SALESBRIDGE_EMBEDDED_WORKER="false",
        SALESBRIDGE_SCHEDULER_TICK_SECONDS="1", SALESBRIDGE_LOG_LEVEL="WARNING",
        SALESBRIDGE_LOG_FORMAT="json",
        SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES="true",  # the sandbox CRM is on 127.0.0.1
    )  # fmt: skip
    return env


def start_processes(
    env: dict[str, str], port: int, workers: int, log_dir: Path
) -> list[subprocess.Popen[bytes]]:
    """``salesbridge serve`` on ``port`` and ``workers`` x ``salesbridge worker``; waits for it."""
    processes = []
    commands = [[str(BIN / "salesbridge"), "serve", "--port", str(port)]]
    commands += [[str(BIN / "salesbridge"), "worker"] for _ in range(workers)]
    for n, command in enumerate(commands):
        with (log_dir / f"process-{n}.log").open("wb") as sink:
            processes.append(
                subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
            )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if processes[0].poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return processes
        except OSError:
            time.sleep(0.1)
    stop_processes(processes)
    msg = f"the API did not start:\n{(log_dir / 'process-0.log').read_text(errors='replace')}"
    raise RuntimeError(msg)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def queue_full_sync(api: Any, bearer: str, *, timeout: float = 120) -> list[int]:
    """``POST /api/v1/sync/full``; the job queue entry ids it queued.

    Enabling the connection makes the recurring entries due at once, and a full sync
    refuses (409) to start beside a running one of its mapping: ask again, as a person
    would, until it is accepted.
    """
    deadline = time.monotonic() + timeout
    while True:
        queued = await api.post("/api/v1/sync/full", headers={"Authorization": bearer})
        if queued.status_code != 409 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    if queued.status_code != 202:
        msg = f"the full sync was not queued: {queued.status_code} {queued.text}"
        raise RuntimeError(msg)
    return [entry["id"] for entry in queued.json()["entries"]]


async def load_during_sync(
    port: int,
    bearer: str,
    basic: str,
    numbers: Sequence[str],
    entry_ids: Sequence[int],
    *,
    clients: int = 4,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Read REST and OData with ``clients`` connections until every entry has finished."""
    latencies: dict[str, list[float]] = {kind: [] for kind in DURING_SYNC_KINDS}
    errors: dict[str, int] = {}
    samples: list[str] = []
    statuses: dict[int, str] = {}
    done = asyncio.Event()
    rng = random.Random(5)
    began = time.perf_counter()

    async def watch() -> None:
        connection = Connection(port, f"Authorization: {bearer}\r\n")
        while time.perf_counter() - began < timeout:
            for entry_id in entry_ids:
                status, body = await connection.get(f"/api/v1/job-queue-entries/{entry_id}")
                statuses[entry_id] = json.loads(body)["status"] if status == 200 else str(status)
            if all(s in ("finished", "error") for s in statuses.values()):
                break
            await asyncio.sleep(0.5)
        connection.close()
        done.set()

    def target(kind: str) -> str:
        if kind == "rest_items":
            return f"/api/v1/items?$top=50&$skip={rng.randrange(max(1, len(numbers)))}"
        if kind == "rest_progress":
            return "/api/v1/sync/progress"
        if kind == "odata_key":
            return f"{SERVICE}('{quote(rng.choice(numbers))}')"
        prefix = quote(rng.choice(numbers)[:-2] or "0")
        return f"{SERVICE}?$filter=startswith(ItemNo,'{prefix}')&$top=50"

    async def drive(seed: int) -> None:
        rest = Connection(port, f"Authorization: {bearer}\r\n")
        odata = Connection(port, f"Authorization: {basic}\r\n")
        turn = seed
        while not done.is_set():
            kind = DURING_SYNC_KINDS[turn % len(DURING_SYNC_KINDS)]
            turn += 1
            started = time.perf_counter()
            try:
                status, body = await (rest if kind.startswith("rest") else odata).get(target(kind))
            except (OSError, asyncio.IncompleteReadError) as exc:
                status, body = 0, repr(exc).encode()
            latencies[kind].append(time.perf_counter() - started)
            if status != 200:
                errors[kind] = errors.get(kind, 0) + 1
                if len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(f"{kind}: {status} {body[:150]!r}")
        rest.close()
        odata.close()

    await asyncio.gather(watch(), *(drive(n) for n in range(clients)))
    elapsed = time.perf_counter() - began
    every = [value for found in latencies.values() for value in found]
    return {
        "clients": clients,
        "sync_seconds": round(elapsed, 1),
        "entries": statuses,
        "requests": len(every),
        "errors": sum(errors.values()),
        "p50_ms": percentile(every, 0.5) if every else None,
        "p99_ms": percentile(every, 0.99) if every else None,
        "kinds": summarise(latencies, errors),
        "error_samples": samples,
    }


# -- the command line ------------------------------------------------------------------------
def _load_mode(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    from bench import odata as odata_bench

    os.sched_setaffinity(0, {1})
    work = args.keep or Path(tempfile.mkdtemp(prefix="odata-load-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path, data_dir = work / "bench.db", work / "data"
    sizes = odata_bench.seed(db_path, args.scale) if not db_path.exists() else {"reused": 1}
    authorization = odata_bench.create_reader(db_path, data_dir)
    n_items = int(100_000 * args.scale)
    numbers = [str(100_000 + n) for n in range(n_items)]
    port = _free_port()
    server = odata_bench.start_server(["--serve", str(db_path), str(data_dir)], port)
    process = psutil.Process(server.pid)
    rss: list[int] = []
    try:
        figures = asyncio.run(
            run_load(port, authorization, numbers, clients=args.clients, seconds=args.seconds,
                     kinds=args.kinds.split(","),
                     on_tick=lambda: rss.append(process.memory_info().rss))
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {"benchmark": "odata_load", "scale": args.scale, **sizes, **figures,
            "server_peak_rss_mb": round(max(rss) / 2**20, 1) if rss else None}  # fmt: skip


async def _during_sync_mode(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from app.auth.encryption import encrypt_secret
    from app.auth.users import create_user
    from app.db import create_engine, create_sessionmaker, session_scope
    from app.migrations import upgrade_database
    from app.models.integration import ConnectionSetup
    from app.models.security import Role
    from app.settings import Settings
    from bench.dataverse_limits import _start_sandbox
    from bench.sync import _seed

    work = Path(tempfile.mkdtemp(prefix="odata-during-sync-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{work / 'erp.db'}"
    await upgrade_database(database_url)
    settings = Settings(data_dir=work / "data", database_url=database_url, redis_url=args.redis_url)
    sandbox_port = _free_port()
    sandbox = _start_sandbox(sandbox_port)
    base_url = f"http://127.0.0.1:{sandbox_port}"
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    await _seed(sessionmaker, base_url, args.during_sync)
    password = "bench password for the admin"  # noqa: S105 - a throwaway database
    async with session_scope(sessionmaker) as session:
        setup = (await session.exec(select(ConnectionSetup))).one()
        setup.token_url = f"{base_url}/sandbox-tenant/oauth2/v2.0/token"
        setup.client_id = "sandbox-client"
        setup.client_secret_encrypted = encrypt_secret(settings, "sandbox-secret")
        setup.dataverse_connection_enabled = True
        await create_user(
            session, user_name="admin", roles=[Role.integration_admin], password=password
        )
        await create_user(
            session, user_name="crm", roles=[Role.product_availability], password=None
        )
    await engine.dispose()
    port = _free_port()
    env = environment(database_url, args.redis_url, settings.data_dir)
    processes = start_processes(env, port, args.workers, work)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as api:
            token = await api.post(
                "/api/v1/auth/token", data={"username": "admin", "password": password}
            )
            bearer = f"Bearer {token.json()['access_token']}"
            key = (
                await api.post("/api/v1/users/crm/keys", headers={"Authorization": bearer})
            ).json()["key"]
            basic = "Basic " + base64.b64encode(f"crm:{key}".encode()).decode()
            entry_ids = await queue_full_sync(api, bearer)
        numbers = [f"{n:07d}" for n in range(args.during_sync)]
        figures = await load_during_sync(
            port, bearer, basic, numbers, entry_ids, clients=args.clients, timeout=args.seconds_max
        )
    finally:
        stop_processes(processes)
        sandbox.terminate()
        sandbox.wait(timeout=10)
    return {"benchmark": "odata_load --during-sync", "items": args.during_sync,
            "workers": args.workers, **figures}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--keep", type=Path, default=None, help="reuse/keep the database here")
    parser.add_argument("--kinds", default=",".join(KINDS), help="the mix, comma-separated")
    parser.add_argument("--during-sync", type=int, default=0, metavar="ITEMS")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds-max", type=float, default=600.0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    if args.during_sync:
        if args.clients == 32:
            args.clients = 4
        print(json.dumps(asyncio.run(_during_sync_mode(args))))
    else:
        print(json.dumps(_load_mode(args)))


if __name__ == "__main__":
    main()
