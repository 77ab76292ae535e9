"""Sign-in costs (issue 14): timing of known vs unknown users, and OData under a guess flood.

    .venv/bin/python bench/sign_in.py [--tries 200] [--flood-seconds 10]

Serves the real app in its own uvicorn process (SQLite in a temporary data dir,
SALESBRIDGE_TRUSTED_PROXIES=127.0.0.1 so each request can come from the address in its
X-Forwarded-For) and prints JSON lines:

1. ``timing``: failed sign-ins at ``POST /api/v1/auth/token`` for an existing user and
   for an unknown user name, ``--tries`` each, interleaved (so background load hits both
   alike), each from a fresh address (no throttling in play). Cases: a key-shaped secret
   (``sbk_...``, the reported leak: 12 ms known vs 35 ms unknown) and a password.
   Reports medians and 90th percentiles in ms and their difference.
2. ``flood``: the median latency of OData reads with the CRM's key alone, then while
   wrong passwords arrive at the token endpoint at 17/s from 40 addresses (the reported
   case: 1.8 ms -> 20.6 ms when each argon2 check ran on the event loop).

Never asserts timings (tests/hostile/test_sign_in_work.py asserts the equal work).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = "a correct horse battery staple"  # noqa: S105 - the bench user's
FLOOD_RATE = 17.0
FLOOD_ADDRESSES = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _arrange(database_url: str, data_dir: Path) -> str:
    """alice (a password), crm (an access key); returns crm's Basic header."""
    from app.auth import user_keys, users
    from app.db import create_engine, create_sessionmaker, session_scope
    from app.migrations import upgrade_database
    from app.models.security import Role
    from app.settings import Settings

    await upgrade_database(database_url)
    settings = Settings(data_dir=data_dir, database_url=database_url)
    engine = create_engine(database_url)
    async with session_scope(create_sessionmaker(engine)) as session:
        await users.create_user(
            session, user_name="alice", roles=[Role.integration_user], password=PASSWORD
        )
        await users.create_user(session, user_name="crm", roles=[Role.product_availability])
        _row, key = await user_keys.create_key(session, settings, user_name="crm")
    await engine.dispose()
    return "Basic " + base64.b64encode(f"crm:{key}".encode()).decode()


def _start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
               "--port", str(port), "--log-level", "warning", "--no-access-log",
               "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]  # fmt: skip
    with (Path(env["SALESBRIDGE_DATA_DIR"]).parent / "server.log").open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    msg = "the app did not start"
    raise RuntimeError(msg)


def _figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 2),
    }


async def _timing(client: httpx.AsyncClient, tries: int) -> list[dict[str, Any]]:
    secrets_by_case = {"key-shaped secret": "sbk_ABCDEFGHJKLM_" + "x" * 43,
                       "password": "not the password at all"}  # fmt: skip
    results = []
    address = 0
    for case, secret in secrets_by_case.items():
        samples: dict[str, list[float]] = {"known": [], "unknown": []}
        for n in range(tries):
            for who, name in (("known", "alice"), ("unknown", f"nobody{n}")):
                address += 1
                headers = {"X-Forwarded-For": f"10.{address // 65536}.{address // 256 % 256}."
                                              f"{address % 256}"}  # fmt: skip
                started = time.perf_counter()
                response = await client.post(
                    "/api/v1/auth/token", data={"username": name, "password": secret},
                    headers=headers,
                )  # fmt: skip
                samples[who].append(time.perf_counter() - started)
                assert response.status_code == 401, response.text
        known, unknown = _figures(samples["known"]), _figures(samples["unknown"])
        results.append({
            "bench": "timing", "case": case, "tries_each": tries,
            "known": known, "unknown": unknown,
            "median_difference_ms": round(unknown["median_ms"] - known["median_ms"], 2),
        })  # fmt: skip
    return results


async def _odata_latencies(client: httpx.AsyncClient, basic: str, seconds: float) -> list[float]:
    """Latencies of OData reads; one that times out counts with the time it was given."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            response = await client.get(
                "/odata/v4/ItemAvailability?$top=5", headers={"Authorization": basic}
            )
            assert response.status_code == 200, response.text
        except httpx.TimeoutException:
            pass
        samples.append(time.perf_counter() - started)
        await asyncio.sleep(0.01)
    return samples


async def _flood(client: httpx.AsyncClient, seconds: float) -> int:
    """Password guesses for made-up user names (spraying), so no counter reaches its limit
    within the run and every guess is a full check."""
    sent = 0
    tasks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        address = f"192.0.2.{sent % FLOOD_ADDRESSES + 1}"
        form = {"username": f"sprayed{sent}", "password": f"guess {sent}"}
        tasks.append(asyncio.ensure_future(client.post(
            "/api/v1/auth/token", data=form, headers={"X-Forwarded-For": address}
        )))  # fmt: skip
        sent += 1
        await asyncio.sleep(1 / FLOOD_RATE)
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    return sum(1 for answer in answers if isinstance(answer, httpx.TimeoutException))


async def run(tries: int, flood_seconds: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="salesbridge-sign-in-"))
    database_url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    basic = await _arrange(database_url, work / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESBRIDGE_")}
    env.update(SALESBRIDGE_DATA_DIR=str(work / "data"), SALESBRIDGE_DATABASE_URL=database_url,
               SALESBRIDGE_TRUSTED_PROXIES="127.0.0.1", SALESBRIDGE_LOG_LEVEL="ERROR",
               SALESBRIDGE_LOGIN_BACKOFF_MAX_SECONDS="0",
               # No counter reaches a limit: every try is the full work being measured.
               SALESBRIDGE_LOGIN_MAX_FAILURES="1000000")  # fmt: skip
    port = _free_port()
    server = _start_server(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for line in await _timing(client, tries) if tries else []:
                print(json.dumps(line), flush=True)  # noqa: T201
            quiet = await _odata_latencies(client, basic, flood_seconds)
            flood = asyncio.ensure_future(_flood(client, flood_seconds))
            loaded = await _odata_latencies(client, basic, flood_seconds)
            timed_out = await flood
        print(json.dumps({  # noqa: T201
            "bench": "flood", "failures_per_second": FLOOD_RATE, "addresses": FLOOD_ADDRESSES,
            "guesses_timed_out": timed_out, "odata_alone": _figures(quiet),
            "odata_during_flood": _figures(loaded),
        }), flush=True)  # fmt: skip
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still working off a backlog of guesses
            server.kill()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tries", type=int, default=200, help="0: the flood only")
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(run(args.tries, args.flood_seconds))


if __name__ == "__main__":
    main()
