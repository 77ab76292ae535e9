"""Near-real-time sync: how long a change takes to reach the other side. Prints figures and
one JSON line; asserts nothing.

    .venv/bin/python bench/latency.py [--database sqlite|postgresql] [--workers 1]
        [--rate 10] [--seconds 30] [--sustained-per-minute 1000] [--sustained-seconds 60]
        [--faulty 0.3] [--fault-changes 200]

Everything runs as people run it, each in its own process: the sandbox CRM
(``salesbridge sandbox``), ``salesbridge serve`` (embedded worker off; its embedded Redis)
and ``--workers`` ``salesbridge worker`` processes. The bench loads customers and items
over the REST API, connects with ``connection setup --sandbox`` (which registers the
webhook) and runs ``sync full``. Then, per phase, it changes records on both sides at a
steady rate and polls the other side every 50 ms:

- ERP -> CRM: an item's description changed over REST (``PATCH /api/v1/items/{no}``),
  seen when the CRM product's ``name`` has the new text;
- CRM -> ERP: an account's phone changed in the CRM by a salesperson (the application user
  acting on the person's behalf, ``MSCRMCallerID``), seen when the ERP customer's ``phone``
  has it.

Latency is from the write's answer (it has committed) to the first poll that sees it.

Phases: ``first`` (20 changes each way, right after the full sync: the CRM's
notifications of its own writes are still being delivered; reported apart), ``steady``
(``--rate`` changes/s each way for ``--seconds``), ``sustained``
(``--sustained-per-minute`` each way; lag per 10 s window, first against last), and
``faulty``: the sandbox drops half of ``--faulty`` of its webhook deliveries and
duplicates the other half; after the changes, ``sync run CUSTOMER`` (the periodic run,
started now rather than waited for) must bring every dropped one, and the ERP must hold
no record twice. CRM requests per change are the sandbox's request count over the phase,
less the bench's own requests, over the changes made.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from app.db import create_engine  # noqa: E402
from app.sandbox.security import SEEDED_ROLES  # noqa: E402

BIN = Path(sys.executable).with_name("salesbridge")
POLL_SECONDS = 0.05
SETTLE_SECONDS = 30.0  # how long a phase waits for its last changes before counting them lost
ODATA = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
SANDBOX_CLIENT = {
    "grant_type": "client_credentials",
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """The processes and where they answer."""

    work: Path
    env: dict[str, str]
    database_url: str
    service_url: str
    sandbox_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own command
            [str(BIN), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        self.processes.append(process)
        return process

    def command(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - our own command
            [str(BIN), *args], env=self.env, cwd=ROOT, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"salesbridge {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_until_answers(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {seconds} s")


def start_stack(work: Path, database_url: str, workers: int) -> Stack:
    port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "SALESBRIDGE_DATA_DIR": str(work / "data"),
        "SALESBRIDGE_PORT": str(port),
        "SALESBRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SALESBRIDGE_SANDBOX_PORT": str(sandbox_port),
        "SALESBRIDGE_ALLOW_PRIVATE_CRM_ADDRESSES": "true",
        "SALESBRIDGE_EMBEDDED_WORKER": "false",
        "SALESBRIDGE_LOG_LEVEL": "WARNING",
        "SALESBRIDGE_LOG_FORMAT": "json",
    }
    if database_url:
        env["SALESBRIDGE_DATABASE_URL"] = database_url
    else:
        database_url = f"sqlite+aiosqlite:///{work / 'data' / 'salesbridge.db'}"
    stack = Stack(work, env, database_url, f"http://127.0.0.1:{port}",
                  f"http://127.0.0.1:{sandbox_port}")  # fmt: skip
    stack.start("sandbox", "sandbox", "--db", str(work / "sandbox.db"))
    wait_until_answers(f"{stack.sandbox_url}/_sandbox")
    stack.start("serve", "serve")
    wait_until_answers(f"{stack.service_url}/readyz")
    for number in range(workers):
        stack.start(f"worker-{number}", "worker")
    return stack


@dataclass
class Change:
    key: str
    value: str
    answered: float = 0.0
    seen: float | None = None


class Sides:
    """Clients of both sides: the REST API as the admin, the CRM as the application user
    (reads) and as a salesperson (edits)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.own_crm_requests = 0

    async def open(self) -> None:
        token = self.stack.command("token", "admin").strip()
        self.erp = httpx.AsyncClient(
            base_url=f"{self.stack.service_url}/api/v1/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                f"{self.stack.sandbox_url}/sandbox-tenant/oauth2/v2.0/token",
                data={**SANDBOX_CLIENT, "scope": f"{self.stack.sandbox_url}/.default"},
            )
        answer.raise_for_status()
        bearer = {**ODATA, "Authorization": f"Bearer {answer.json()['access_token']}"}
        self.crm = httpx.AsyncClient(
            base_url=f"{self.stack.sandbox_url}/api/data/v9.2/", headers=bearer, timeout=30
        )
        self.control = httpx.AsyncClient(base_url=f"{self.stack.sandbox_url}/_sandbox/")
        self.engine = create_engine(self.stack.database_url)

    async def close(self) -> None:
        for client in (self.erp, self.crm, self.control):
            await client.aclose()
        await self.engine.dispose()

    async def crm_call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.own_crm_requests += 1
        answer = await self.crm.request(method, url, **kwargs)
        answer.raise_for_status()
        return answer

    async def erp_rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    async def crm_requests(self) -> int:
        return int((await self.control.get("counters")).json()["total_requests"])

    async def salesperson(self) -> str:
        made = await self.control.post("users", json={"firstname": "Lat", "lastname": "Bench"})
        made.raise_for_status()
        app_user = (await self.crm_call("GET", "WhoAmI")).json()["UserId"]
        role = f"{self.crm.base_url}roles({SEEDED_ROLES['Delegate']})"
        granted = await self.crm.post(
            f"systemusers({app_user})/systemuserroles_association/$ref", json={"@odata.id": role}
        )
        self.own_crm_requests += 1
        if granted.status_code != 412:  # already assigned
            granted.raise_for_status()
        return str(made.json()["systemuserid"])


async def load(sides: Sides, records: int) -> None:
    """Units, items and customers over REST, then the connection and a full sync."""
    units = [{"code": "PCS", "description": "Pieces"}]
    (await sides.erp.post("units-of-measure/bulk-upsert", json=units)).raise_for_status()
    for start in range(0, records, 1000):
        numbers = range(start, min(start + 1000, records))
        items = [{"no": f"LAT{n:05}", "description": f"Item {n}", "base_unit_of_measure": "PCS"}
                 for n in numbers]  # fmt: skip
        (await sides.erp.post("items/bulk-upsert", json=items)).raise_for_status()
        customers = [{"no": f"LC{n:05}", "name": f"Customer {n}"} for n in numbers]
        (await sides.erp.post("customers/bulk-upsert", json=customers)).raise_for_status()
    sides.stack.command("connection", "setup", "--sandbox")
    sides.stack.command("sync", "full")


async def account_ids(sides: Sides) -> dict[str, str]:
    rows = await sides.erp_rows(
        "SELECT c.no, r.crm_id FROM customer c JOIN integration_record r"
        " ON r.integration_id = c.system_id AND r.table_name = 'customer'"
        " WHERE c.no LIKE 'LC%'"
    )
    return {str(no): str(uuid.UUID(str(crm_id))) for no, crm_id in rows}


async def drive(
    changes: list[Change], rate: float, write: Callable[[Change], Awaitable[None]]
) -> None:
    """Writes at a steady rate, each in its own task (a slow answer delays no other)."""
    began = time.monotonic()

    async def one(index: int, change: Change) -> None:
        await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
        await write(change)
        change.answered = time.monotonic()

    await asyncio.gather(*(one(i, c) for i, c in enumerate(changes)))


async def watch(
    changes: list[Change], read: Callable[[list[str]], Awaitable[dict[str, str]]], until: float
) -> None:
    """Poll the other side for every answered, unseen change until all are seen or ``until``
    (plus the settle time) has passed."""
    while True:
        now = time.monotonic()
        waiting = [c for c in changes if c.seen is None and c.answered]
        if not waiting and all(c.answered for c in changes):
            return
        if now > until + SETTLE_SECONDS:
            return
        for start in range(0, len(waiting), 40):
            chunk = waiting[start : start + 40]
            found = await read([c.key for c in chunk])
            seen = time.monotonic()
            for change in chunk:
                if found.get(change.key) == change.value:
                    change.seen = seen
        await asyncio.sleep(POLL_SECONDS)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def figures(changes: list[Change]) -> dict[str, Any]:
    latencies = [c.seen - c.answered for c in changes if c.seen is not None]
    out: dict[str, Any] = {"changes": len(changes), "seen": len(latencies),
                           "lost": len(changes) - len(latencies)}  # fmt: skip
    if latencies:
        out.update(p50_s=round(percentile(latencies, 0.5), 2),
                   p95_s=round(percentile(latencies, 0.95), 2),
                   max_s=round(max(latencies), 2))  # fmt: skip
    return out


def windows(changes: list[Change], seconds: float = 10) -> list[float]:
    """p50 latency of the changes answered in each ``seconds`` window."""
    if not changes:
        return []
    start = min(c.answered for c in changes)
    buckets: dict[int, list[float]] = {}
    for change in changes:
        if change.seen is not None:
            bucket = int((change.answered - start) // seconds)
            buckets.setdefault(bucket, []).append(change.seen - change.answered)
    return [round(percentile(buckets[b], 0.5), 2) for b in sorted(buckets)]


class Directions:
    """The two kinds of change and how each is seen on the other side."""

    def __init__(self, sides: Sides, accounts: dict[str, str], person: str) -> None:
        self.sides, self.accounts, self.person = sides, accounts, person

    async def write_item(self, change: Change) -> None:
        answer = await self.sides.erp.patch(
            f"items/{change.key}", json={"description": change.value}
        )
        answer.raise_for_status()

    async def read_products(self, keys: list[str]) -> dict[str, str]:
        condition = " or ".join(f"productnumber eq '{key}'" for key in keys)
        answer = await self.sides.crm_call(
            "GET", "products", params={"$select": "productnumber,name", "$filter": condition}
        )
        return {row["productnumber"]: row["name"] for row in answer.json()["value"]}

    async def write_account(self, change: Change) -> None:
        await self.sides.crm_call(
            "PATCH",
            f"accounts({self.accounts[change.key]})",
            json={"telephone1": change.value},
            headers={"MSCRMCallerID": self.person, "If-Match": "*"},
        )

    async def read_customers(self, keys: list[str]) -> dict[str, str]:
        marks = ",".join(f":k{i}" for i in range(len(keys)))
        rows = await self.sides.erp_rows(
            f"SELECT no, phone FROM customer WHERE no IN ({marks})",  # noqa: S608 - bound values
            **{f"k{i}": key for i, key in enumerate(keys)},
        )
        return {str(no): str(phone) for no, phone in rows}

    async def run(self, tag: str, count: int, rate: float) -> dict[str, Any]:
        """``count`` changes each way at ``rate`` per second each, both ways at once."""
        items = [Change(f"LAT{n:05}", f"{tag} {n}") for n in range(count)]
        customers = [Change(f"LC{n:05}", f"{tag}-{n}"[:30]) for n in range(count)]
        before = await self.sides.crm_requests()
        own_before = self.sides.own_crm_requests
        until = time.monotonic() + count / rate
        await asyncio.gather(
            drive(items, rate, self.write_item),
            drive(customers, rate, self.write_account),
            watch(items, self.read_products, until),
            watch(customers, self.read_customers, until),
        )
        crm = await self.sides.crm_requests() - before
        own = self.sides.own_crm_requests - own_before + 1  # + the counters read itself
        return {
            "erp_to_crm": {**figures(items), "p50_per_10s": windows(items)},
            "crm_to_erp": {**figures(customers), "p50_per_10s": windows(customers)},
            "crm_requests_per_change": round((crm - own) / (2 * count), 2),
            "items": items,
            "customers": customers,
        }


async def faulty_phase(directions: Directions, changes: int, faulty: float) -> dict[str, Any]:
    """Half of ``faulty`` dropped, half duplicated; then the periodic run catches up."""
    sides = directions.sides
    knobs = {"drop_rate": faulty / 2, "duplicate_rate": faulty / 2, "seed": 18}
    (await sides.control.patch("webhooks", json=knobs)).raise_for_status()
    customers_before = (await sides.erp_rows("SELECT count(*) FROM customer"))[0][0]
    couplings_before = (await sides.erp_rows("SELECT count(*) FROM integration_record"))[0][0]
    batch = [Change(f"LC{n:05}", f"faulty-{n}") for n in range(changes)]
    until = time.monotonic() + changes / 10
    await asyncio.gather(
        drive(batch, 10, directions.write_account),
        watch(batch, directions.read_customers, until - SETTLE_SECONDS + 10),
    )
    in_time = figures(batch)
    deliveries = (await sides.control.get("webhooks")).json()["counters"]
    sides.stack.command("sync", "run", "CUSTOMER")
    await watch(batch, directions.read_customers, time.monotonic())
    (
        await sides.control.patch("webhooks", json={"drop_rate": 0, "duplicate_rate": 0})
    ).raise_for_status()
    customers_after = (await sides.erp_rows("SELECT count(*) FROM customer"))[0][0]
    couplings_after = (await sides.erp_rows("SELECT count(*) FROM integration_record"))[0][0]
    caught_up = sum(1 for change in batch if change.seen is not None)
    return {
        "changes": changes,
        "faulty_share": faulty,
        "deliveries": {
            k: deliveries.get(k) for k in ("delivered", "dropped", "duplicated", "failed")
        },
        "seen_before_the_periodic_run": in_time["seen"],
        "lost_after_the_periodic_run": changes - caught_up,
        "duplicated_records": (customers_after - customers_before)
        + (couplings_after - couplings_before),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="salesbridge-latency-"))
    database_url = ""
    if args.database == "postgresql":
        from tests.fixtures import services  # the suite's way to a fresh PostgreSQL database

        database_url = await services.create_run_database(_postgres_base(), purpose="latency")
    records = max(args.rate * args.seconds, args.sustained_per_minute * args.sustained_seconds / 60,
                  args.fault_changes)  # fmt: skip
    stack = start_stack(work, database_url, args.workers)
    sides = Sides(stack)
    try:
        await sides.open()
        loaded = time.perf_counter()
        await load(sides, int(records))
        result: dict[str, Any] = {
            "benchmark": "latency", "database": args.database, "workers": args.workers,
            "records_each_side": int(records),
            "load_seconds": round(time.perf_counter() - loaded, 1),
            "load_average_before": list(os.getloadavg()),
        }  # fmt: skip
        directions = Directions(sides, await account_ids(sides), await sides.salesperson())
        # The first CRM changes wait behind the CRM's notifications of the full sync's own
        # writes (ignored by the receiver, but delivered first): reported apart, as "first".
        first = await directions.run("first", 20, args.rate)
        steady = await directions.run("steady", int(args.rate * args.seconds), args.rate)
        per_second = args.sustained_per_minute / 60
        sustained = await directions.run(
            "sustained", int(per_second * args.sustained_seconds), per_second
        )
        for phase in (first, steady, sustained):
            phase.pop("items"), phase.pop("customers")
        result["first"] = first
        result["steady"] = {"rate_per_second_each_way": args.rate, **steady}
        result["sustained"] = {"per_minute_each_way": args.sustained_per_minute, **sustained}
        result["faulty"] = await faulty_phase(directions, args.fault_changes, args.faulty)
        result["load_average_after"] = list(os.getloadavg())
        return result
    finally:
        if hasattr(sides, "erp"):
            await sides.close()
        stack.stop()
        if database_url:
            from tests.fixtures import services

            await services.drop_run_database(_postgres_base(), database_url)


def _postgres_base() -> str:
    from tests.fixtures import services

    return os.environ.get("SALESBRIDGE_TEST_POSTGRES_URL", services.DEFAULT_POSTGRES_URL)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sustained-per-minute", type=float, default=1000)
    parser.add_argument("--sustained-seconds", type=float, default=60)
    parser.add_argument("--faulty", type=float, default=0.3)
    parser.add_argument("--fault-changes", type=int, default=200)
    return parser.parse_args()


if __name__ == "__main__":
    outcome = asyncio.run(main(_arguments()))
    print(json.dumps(outcome))
