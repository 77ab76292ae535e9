"""A third-party OData client (python-odata) against the service running in uvicorn.

It reflects our ``$metadata`` into entity classes, sends ``$filter``/``$orderby``/``$top``,
follows ``@odata.nextLink`` and parses OData error JSON, over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from odata import ODataService
from odata.exceptions import ODataError
from requests.auth import HTTPBasicAuth
from sqlmodel.ext.asyncio.session import AsyncSession

from app.db import SessionMaker
from app.main import create_app
from app.models.security import Role
from app.settings import Settings
from tests.factories import create_access_key, create_user
from tests.odata import factories


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    app = create_app(settings, should_migrate=False)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the OData server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/odata/v4/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
async def seeded(session: AsyncSession, settings: Settings) -> HTTPBasicAuth:
    numbers = [f"P{n:03d}" for n in range(40)]
    await factories.add_items(session, numbers)
    await factories.add_ledger(session, [(no, "BLUE", n) for n, no in enumerate(numbers)])
    user = await create_user(
        session, user_name="sales", roles=(Role.product_availability,), password=None
    )
    key = await create_access_key(session, settings, user=user)
    await session.commit()
    return HTTPBasicAuth("sales", key)


def _client_session(settings: Settings, auth: HTTPBasicAuth) -> list[object]:
    with serve(settings.model_copy(update={"odata_max_page_size": 7})) as url:
        service = ODataService(url, reflect_entities=True, auth=auth)
        availability = service.entities["ItemAvailability"]
        rows = (
            service.query(availability)
            .filter(availability.Inventory < 20)
            .order_by(availability.ItemNo.desc())
            .all()  # 20 rows over 3 pages of 7: follows the nextLinks
        )
        few = (
            service.query(availability).filter(availability.ItemNo.startswith("P01")).limit(3).all()
        )
        try:
            service.query(availability).raw({"$filter": "Nope eq 1"})
            error = None
        except ODataError as exc:
            error = str(exc)
        return [rows, few, error]


async def test_python_odata_reads_filters_orders_and_pages(
    settings: Settings, seeded: HTTPBasicAuth, sessionmaker: SessionMaker
) -> None:
    rows, few, error = await asyncio.to_thread(_client_session, settings, seeded)
    assert [r.ItemNo for r in rows] == [f"P{n:03d}" for n in range(19, -1, -1)]  # type: ignore[attr-defined]
    assert [float(r.Inventory) for r in rows] == [float(n) for n in range(19, -1, -1)]  # type: ignore[attr-defined]
    assert [r.ItemNo for r in few] == ["P010", "P011", "P012"]  # type: ignore[attr-defined]
    assert error is not None and "BadRequest" in error and "Nope" in error
