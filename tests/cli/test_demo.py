"""``salesbridge demo`` as a newcomer runs it: a real process, Ctrl-C, then a second run."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from app.demo.instructions import DEMO_PHONE
from app.demo.sample_company import CUSTOMERS, ITEMS, RESOURCES
from app.embedded_redis import server_processes
from tests.cli.test_serve import BIN, STARTUP_SECONDS, Served, _environment, first_admin_password
from tests.cli.test_serve import start_serve as start_serve  # the fixture, shared
from tests.conftest import BACKENDS
from tests.fixtures.services import free_port, postgres_url

CURL = re.compile(r"^\s*(curl -s -u .*)$", re.MULTILINE)
SANDBOX_FORM = {"grant_type": "client_credentials", "client_id": "sandbox-client",
                "client_secret": "sandbox-secret"}  # fmt: skip
STOCK = {item.no: item.stock for item in ITEMS}
POSTGRES_URL = postgres_url() if "postgres" in BACKENDS else None  # probed outside any loop


@dataclass
class Demo:
    process: subprocess.Popen[bytes]
    log_file: Path
    base_url: str
    sandbox_url: str

    @property
    def output(self) -> str:
        return self.log_file.read_text(errors="replace")

    def wait_for_curl(self) -> tuple[tuple[str, str], str]:
        """The printed curl's credentials and URL, once the first sync has ended."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"demo exited early:\n{self.output}"
            found = CURL.search(self.output)
            if found:
                words = shlex.split(found.group(1))
                user, _, key = words[words.index("-u") + 1].partition(":")
                return (user, key), words[-1]
            time.sleep(0.2)
        pytest.fail(f"no curl line after {STARTUP_SECONDS} s:\n{self.output}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)


async def _postgres(statement: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    base = POSTGRES_URL
    assert base is not None
    connection = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(params=BACKENDS)
async def database_env(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, str]]:
    """Extra environment of the demo: nothing (SQLite in the data dir) or a new PG database."""
    if request.param == "sqlite":
        yield {}
        return
    base = POSTGRES_URL
    assert base is not None
    name = f"salesbridge_demo_{os.getpid()}"  # not the suite's own run database
    await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _postgres(f'CREATE DATABASE "{name}"')
    yield {"SALESBRIDGE_DATABASE_URL": base.rsplit("/", 1)[0] + f"/{name}"}
    await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    started: list[Demo] = []
    yield started
    for demo in started:
        if demo.process.poll() is None:
            demo.process.kill()
            demo.process.wait(timeout=10)


def _start(
    demos: list[Demo], tmp_path: Path, env: dict[str, str], *, run: int, sandbox_port: int,
    options: tuple[str, ...] = (),
) -> Demo:  # fmt: skip
    port = free_port()
    log_file = tmp_path / f"demo-{run}.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / "salesbridge"), "demo", "--port", str(port),
             "--sandbox-port", str(sandbox_port), *options],
            cwd=tmp_path, env={**_environment(tmp_path / "data"), **env}, stdout=sink,
            stderr=subprocess.STDOUT, start_new_session=True,  # no terminal: see test_serve
        )  # fmt: skip
    demos.append(Demo(process, log_file, f"http://127.0.0.1:{port}",
                      f"http://127.0.0.1:{sandbox_port}"))  # fmt: skip
    return demos[-1]


def _availability(auth: tuple[str, str], url: str) -> dict[str, dict[str, object]]:
    response = httpx.get(url, auth=auth, timeout=10)
    assert response.status_code == 200, response.text
    return {row["ItemNo"]: row for row in response.json()["value"]}


def _crm_rows(demo: Demo, entity_set: str, column: str) -> list[str]:
    """One column of every row of a sandbox table, read over its Web API."""
    form = {**SANDBOX_FORM, "scope": f"{demo.sandbox_url}/.default"}
    token = httpx.post(
        f"{demo.sandbox_url}/sandbox-tenant/oauth2/v2.0/token", data=form, timeout=10
    )
    assert token.status_code == 200, token.text
    response = httpx.get(
        f"{demo.sandbox_url}/api/data/v9.2/{entity_set}?$select={column}",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return sorted(row[column] for row in response.json()["value"])


def _admin(demo: Demo, password: str) -> dict[str, str]:
    response = httpx.post(f"{demo.base_url}/api/v1/auth/token",
                          data={"username": "admin", "password": password}, timeout=10)  # fmt: skip
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _get(demo: Demo, path: str, headers: dict[str, str]) -> Any:
    response = httpx.get(f"{demo.base_url}{path}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _salesperson_edit_comes_back(
    demo: Demo, tmp_path: Path, env: dict[str, str], admin: dict[str, str]
) -> None:
    """The banner's ``crm-edit`` (a salesperson's change, made over the sandbox's Web API
    as that person), then CUSTOMER's run brings it into the ERP customer."""
    command = next(line.strip() for line in demo.output.splitlines() if "crm-edit" in line)
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env={**_environment(tmp_path / "data"), **env},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "in the CRM as alicia.hart@cronus.example" in done.stderr, done.stderr
    # The demo's connection registers the CRM's change notifications.
    assert "CUSTOMER brings it to the ERP within seconds" in done.stderr, done.stderr
    customer = str(CUSTOMERS[0]["no"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # Queue CUSTOMER (409 while it is queued or running already: it will run).
        httpx.post(f"{demo.base_url}/api/v1/sync/mappings/CUSTOMER/run", headers=admin,
                   timeout=30)  # fmt: skip
        if _get(demo, f"/api/v1/customers/{customer}", admin)["phone"] == DEMO_PHONE:
            return
        time.sleep(2)
    msg = f"the salesperson's CRM edit did not reach the ERP customer {customer}"
    raise AssertionError(msg)


def _no_redis_left(tmp_path: Path) -> bool:
    running = server_processes((tmp_path / "data" / "redis").resolve())
    return all(p.status() == psutil.STATUS_ZOMBIE for p in running)


def test_demo_syncs_a_sample_company_serves_it_and_runs_again(
    demos: list[Demo], tmp_path: Path, database_env: dict[str, str]
) -> None:
    sandbox_port = free_port()
    first = _start(demos, tmp_path, database_env, run=1, sandbox_port=sandbox_port)
    auth, url = first.wait_for_curl()
    assert "Assisted setup finished" in first.output
    assert "Coupled 3 salespeople" in first.output
    assert f"Web console          {first.base_url}/" in first.output
    console = httpx.get(f"{first.base_url}/sign-in", timeout=10)
    assert console.status_code == 200 and "Sign in" in console.text
    assert auth[0] == "crm"
    assert url == f"{first.base_url}/odata/v4/ItemAvailability?$select=ItemNo,Description,Inventory"

    # The CRM's view of availability: every sample item with its opening stock.
    rows = _availability(auth, url)
    assert {no: row["Inventory"] for no, row in rows.items()} == STOCK
    coupled = _availability(
        auth, f"{first.base_url}/odata/v4/ItemAvailability?$select=ItemNo,CRMProductId"
    )
    assert all(row["CRMProductId"] for row in coupled.values())  # synced and coupled

    # The sandbox CRM holds what the full synchronization sent.
    products = _crm_rows(first, "products", "productnumber")
    assert products == sorted([*STOCK, *(str(r["no"]) for r in RESOURCES)])
    accounts = _crm_rows(first, "accounts", "name")
    assert accounts == sorted(str(c["name"]) for c in CUSTOMERS)

    # The sync log over REST, as the printed instructions say.
    password = first_admin_password(tmp_path / "data", first.output)
    admin = _admin(first, password)
    log = _get(first, "/api/v1/sync-jobs?$top=200", admin)
    jobs = [j for j in log["items"] if j["type"] == "synchronization"]
    item_jobs = [
        j for j in jobs if j["mapping_name"] == "ITEM-PRODUCT" and j["direction"] == "to_crm"
    ]
    assert item_jobs and all(j["finished_at"] for j in jobs)
    # No record failed: owners need the salespeople coupled, which the demo did first.
    assert [j for j in jobs if j["failed"]] == []
    assert any(j["inserted"] == len(STOCK) for j in item_jobs)
    _salesperson_edit_comes_back(first, tmp_path, database_env, admin)

    assert first.stop() == 0, first.output
    assert _no_redis_left(tmp_path)
    with pytest.raises(httpx.TransportError):
        httpx.get(first.sandbox_url, timeout=2)  # the sandbox stopped with it

    # Again on the same data dir: nothing added, the connection reused, a new key.
    second = _start(demos, tmp_path, database_env, run=2, sandbox_port=sandbox_port)
    auth_again, url_again = second.wait_for_curl()
    assert auth_again[1] != auth[1]
    assert "nothing added" in second.output and "Reusing the enabled connection" in second.output
    rows = _availability(auth_again, url_again)
    assert {no: row["Inventory"] for no, row in rows.items()} == STOCK  # stock not doubled
    assert _crm_rows(second, "products", "productnumber") == products
    assert _crm_rows(second, "accounts", "name") == accounts
    admin = _admin(second, password)
    assert _get(second, "/api/v1/customers", admin)["count"] == len(CUSTOMERS)
    assert second.stop() == 0, second.output
    assert _no_redis_left(tmp_path)
    with pytest.raises(httpx.TransportError):
        httpx.get(second.sandbox_url, timeout=2)

    # A sandbox in memory is a new CRM org: couplings to the old one are refused up front.
    third = _start(demos, tmp_path, database_env, run=3, sandbox_port=sandbox_port,
                   options=("--sandbox-memory",))  # fmt: skip
    assert third.process.wait(timeout=STARTUP_SECONDS) == 1, third.output
    assert "coupled to another CRM org" in third.output
    assert _no_redis_left(tmp_path)


def test_first_serve_points_a_newcomer_to_the_demo(start_serve: Callable[[], Served]) -> None:
    serve = start_serve()
    serve.wait_ready()
    assert "bin/salesbridge demo`" in serve.output and "docs/demo.md" in serve.output
    assert serve.stop(signal.SIGINT) == 0, serve.output
