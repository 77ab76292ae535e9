"""A real HTTP receiver for the sandbox's webhooks: uvicorn in a thread, recording requests.

``answers`` lists the status codes of the next attempts (then 200); ``holds`` how long
the next ones wait before answering, then ``hold_seconds`` (a slow receiver);
``on_request`` runs on each request before it answers (to look at the sandbox at the
moment of delivery).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fixtures.sandbox import RunningSandbox

PATH = "/api/v1/crm/notifications"


@dataclass
class Received:
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]
    status: int  # what the receiver answered
    seen: Any = None  # what on_request returned

    @property
    def operation_id(self) -> str:
        return str(self.body["OperationId"])

    @property
    def target(self) -> dict[str, Any]:
        [parameter] = [p for p in self.body["InputParameters"] if p["key"] == "Target"]
        value: dict[str, Any] = parameter["value"]
        return value

    @property
    def attributes(self) -> dict[str, Any]:
        return {item["key"]: item["value"] for item in self.target["Attributes"]}


@dataclass
class Receiver:
    base_url: str = ""
    answers: deque[int] = field(default_factory=deque)
    hold_seconds: float = 0.0
    holds: deque[float] = field(default_factory=deque)  # per attempt, before hold_seconds
    on_request: Callable[[dict[str, Any]], Any] | None = None
    requests: list[Received] = field(default_factory=list)  # every attempt
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.base_url + PATH

    @property
    def delivered(self) -> list[Received]:
        """The requests answered 2xx (what the sandbox counts as delivered)."""
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    async def handle(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            status = self.answers.popleft() if self.answers else 200
            hold = self.holds.popleft() if self.holds else self.hold_seconds
        try:
            seen = self.on_request(body) if self.on_request else None
            if hold:
                await asyncio.sleep(hold)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.requests.append(
                    Received(
                        dict(request.query_params.items()),
                        {name.lower(): value for name, value in request.headers.items()},
                        body,
                        status,
                        seen,
                    )
                )
        return Response(status_code=status)


@contextmanager
def start_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route(PATH, receiver.handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    receiver.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            msg = "the webhook receiver did not start"
            raise RuntimeError(msg)
        time.sleep(0.002)
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def webhook_state(running: RunningSandbox) -> dict[str, Any]:
    async with httpx.AsyncClient() as control:
        response = await control.get(f"{running.control_url}/webhooks")
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


async def settle(running: RunningSandbox, *, within: float = 30.0) -> dict[str, Any]:
    """Wait until the sandbox has no delivery pending (held, queued, in flight or waiting
    for a retry); returns the control API's webhook state."""
    deadline = time.monotonic() + within
    while True:
        state = await webhook_state(running)
        if state["pending"] == 0:
            return state
        if time.monotonic() > deadline:
            msg = f"webhook deliveries still pending: {state}"
            raise AssertionError(msg)
        await asyncio.sleep(0.02)


async def set_webhooks(running: RunningSandbox, **values: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as control:
        response = await control.patch(f"{running.control_url}/webhooks", json=values)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


HEADER_AUTH = 5
KEY_HEADER = "x-salesbridge-webhook-key"


def header_settings(**pairs: str) -> str:
    settings = "".join(
        f'<setting name="{name}" value="{value}" />' for name, value in pairs.items()
    )
    return f"<settings>{settings}</settings>"


async def message_id(api: httpx.AsyncClient, name: str) -> str:
    found = await api.get("sdkmessages", params={"$filter": f"name eq '{name}'"})
    assert found.status_code == 200, found.text
    [row] = found.json()["value"]
    return str(row["sdkmessageid"])


async def filter_id(api: httpx.AsyncClient, message: str, table: str) -> str:
    condition = f"primaryobjecttypecode eq '{table}' and _sdkmessageid_value eq {message}"
    found = await api.get("sdkmessagefilters", params={"$filter": condition})
    assert found.status_code == 200, found.text
    [row] = found.json()["value"]
    return str(row["sdkmessagefilterid"])


async def register_webhook(
    api: httpx.AsyncClient,
    url: str,
    *,
    messages: tuple[str, ...] = ("Create", "Update", "Delete"),
    table: str = "account",
    authtype: int = HEADER_AUTH,
    authvalue: str | None = None,
    mode: int = 1,
    stage: int = 40,
    filtering: str | None = None,
) -> tuple[str, list[str]]:
    """A webhook endpoint and one step per message, as a CRM-side registration makes them:
    returns the endpoint id and the step ids."""
    endpoint = {
        "name": "Salesbridge",
        "contract": 8,
        "url": url,
        "authtype": authtype,
        "authvalue": authvalue if authvalue is not None else header_settings(**{KEY_HEADER: "k1"}),
        "messageformat": 2,
    }
    made = await api.post(
        "serviceendpoints", json=endpoint, headers={"Prefer": "return=representation"}
    )
    assert made.status_code == 201, made.text
    endpoint_id = str(made.json()["serviceendpointid"])
    step_ids = []
    for message in messages:
        message_key = await message_id(api, message)
        step: dict[str, Any] = {
            "name": f"Salesbridge: {table} {message}",
            "mode": mode,
            "stage": stage,
            "rank": 1,
            "supporteddeployment": 0,
            "asyncautodelete": True,
            "eventhandler_serviceendpoint@odata.bind": f"/serviceendpoints({endpoint_id})",
            "sdkmessageid@odata.bind": f"/sdkmessages({message_key})",
            "sdkmessagefilterid@odata.bind": (
                f"/sdkmessagefilters({await filter_id(api, message_key, table)})"
            ),
        }
        if filtering is not None:
            step["filteringattributes"] = filtering
        created = await api.post(
            "sdkmessageprocessingsteps", json=step, headers={"Prefer": "return=representation"}
        )
        assert created.status_code == 201, created.text
        step_ids.append(str(created.json()["sdkmessageprocessingstepid"]))
    return endpoint_id, step_ids
