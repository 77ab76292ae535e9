"""Every console route, read from ``create_app()``: anonymous callers are sent to sign in,
each page admits exactly the roles of ``app.web.access.PAGES`` (the REST API's), and every
state-changing route refuses a role without the admin role (403), CSRF token or not.

The console's counterpart of tests/api/test_route_security.py, which checks the bearer
token routes and leaves these out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute

from app.api.deps import has_any_role
from app.models.security import Role, User
from app.web.access import PAGES, Page
from app.web.routing import ConsoleRoute
from tests.web.conftest import ConsoleFactory

SIGN_IN = {("GET", "/sign-in"), ("POST", "/sign-in")}
SAMPLES = {"entry_id": "1", "job_id": str(uuid.UUID(int=1)), "field_id": str(uuid.UUID(int=2)),
           "integration_id": str(uuid.UUID(int=3)), "crm_id": str(uuid.UUID(int=4))}  # fmt: skip
NAMES = {"mapping_name": "CUSTOMER", "name": "CUSTOMER", "user_name": "nobody",
         "step": "crm_url", "item_no": "1000"}  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str

    @property
    def url(self) -> str:
        url = self.path
        for name, value in {**SAMPLES, **NAMES}.items():
            url = url.replace(f"{{{name}}}", value)
        return url


def console_endpoints(routes: list[BaseRoute]) -> Iterator[Endpoint]:
    for context in iter_route_contexts(routes):
        route = context.original_route
        if isinstance(route, ConsoleRoute):
            for method in sorted(context.methods or ()):
                yield Endpoint(method, context.path or route.path)
        elif hasattr(route, "routes") and not getattr(route, "path", "").startswith("/static"):
            yield from console_endpoints(list(route.routes))


def page_of(path: str) -> Page:
    """The page a GET route belongs to: the longest path prefix (``/`` only itself)."""
    if path in ("/", "/budget"):
        return PAGES[0]
    found = [
        p for p in PAGES if p.path != "/" and (path == p.path or path.startswith(p.path + "/"))
    ]
    assert found, f"{path}: which page is it? add it to app.web.access.PAGES"
    return max(found, key=lambda page: len(page.path))


def test_every_console_route_belongs_to_a_page_or_is_an_admin_action(app: FastAPI) -> None:
    endpoints = list(console_endpoints(app.routes))
    assert len(endpoints) > 40
    for endpoint in endpoints:
        if endpoint.method == "GET" and (endpoint.method, endpoint.path) not in SIGN_IN:
            page_of(endpoint.path)
        else:
            assert endpoint.method == "POST" or (endpoint.method, endpoint.path) in SIGN_IN


async def test_anonymous_callers_are_sent_to_sign_in(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        for endpoint in console_endpoints(app.routes):
            if (endpoint.method, endpoint.path) in SIGN_IN:
                continue
            answer = await http.request(endpoint.method, endpoint.url)
            assert answer.status_code == 303, (endpoint, answer.status_code)
            assert answer.headers["location"].startswith("/sign-in"), endpoint


@pytest.mark.parametrize("role", [Role.product_availability, Role.integration_user])
async def test_each_role_gets_exactly_its_pages_and_no_admin_action(
    app: FastAPI, console_for: ConsoleFactory, role: Role
) -> None:
    console = await console_for(role.value, role)
    user = User(user_name=role.value, roles=role.value)
    failures = []
    for endpoint in console_endpoints(app.routes):
        if (endpoint.method, endpoint.path) in SIGN_IN or endpoint.path == "/sign-out":
            continue
        if endpoint.method == "GET":
            allowed = has_any_role(user, page_of(endpoint.path).roles)
            answer = await console.http.get(endpoint.url)
            refused = answer.status_code == 403
            if endpoint.path == "/" and role == Role.product_availability:
                refused = answer.status_code == 303  # sent to its one page instead
            if allowed == refused or answer.status_code >= 500:
                failures.append(f"GET {endpoint.url} -> {answer.status_code}")
        else:
            answer = await console.post(endpoint.url)
            if answer.status_code != 403:
                failures.append(f"POST {endpoint.url} -> {answer.status_code}")
    assert failures == [], failures
