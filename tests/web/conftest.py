"""The console through its HTTP interface: sign in with the form, keep the cookie, send the
CSRF token like the pages do. (The browser tests in ``tests/browser`` drive real pages.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import Role
from tests.factories import PASSWORD, create_user

_SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')
_CSRF = re.compile(r'"X-CSRF-Token": "([0-9a-f]+)"')


@dataclass
class Console:
    http: httpx.AsyncClient
    csrf: str

    async def post(
        self, path: str, data: dict[str, object] | None = None, *, htmx: bool = True
    ) -> httpx.Response:
        headers = {"HX-Request": "true"} if htmx else {}
        return await self.http.post(
            path, data={"csrf_token": self.csrf, **(data or {})}, headers=headers
        )


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


async def sign_in(
    http: httpx.AsyncClient, user_name: str, password: str = PASSWORD
) -> httpx.Response:
    form = await http.get("/sign-in")
    assert form.status_code == 200, form.text
    token = _SIGN_IN_TOKEN.search(form.text)
    assert token
    return await http.post(
        "/sign-in",
        data={"username": user_name, "password": password, "sign_in_token": token.group(1)},
    )


ConsoleFactory = Callable[..., Awaitable[Console]]


@pytest.fixture
async def console_for(app: FastAPI, session: AsyncSession) -> AsyncIterator[ConsoleFactory]:
    """A signed-in console client per user (each with its own cookie jar)."""
    opened: list[httpx.AsyncClient] = []

    async def make(user_name: str = "admin", *roles: Role) -> Console:
        await create_user(session, user_name=user_name, roles=roles or (Role.integration_admin,))
        await session.commit()
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        opened.append(http)
        answer = await sign_in(http, user_name)
        assert answer.status_code == 303, answer.text
        page = await http.get(answer.headers["location"])
        assert page.status_code == 200, page.text
        return Console(http, csrf_of(page.text))

    yield make
    for http in opened:
        await http.aclose()
