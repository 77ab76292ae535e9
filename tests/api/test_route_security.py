"""Every route of the app refuses anonymous callers (401) and callers without the role (403).

The routes are read from ``create_app()`` itself, so a route added later is checked
without touching this file, and one that ``ROUTE_ROLES`` does not classify fails the
suite until someone decides who may call it. ``ROUTE_ROLES`` is the one place that says
which roles may call what; it follows the role table of ``docs/security.md``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.convertors import IntegerConvertor, PathConvertor, UUIDConvertor
from starlette.routing import BaseRoute, Mount

from app.main import create_app
from app.models.security import Role
from app.settings import Settings
from app.web.routing import ConsoleRoute
from tests import factories

ADMIN = Role.integration_admin
INTEGRATION = Role.integration_user
AVAILABILITY = Role.product_availability

ADMIN_ONLY = frozenset({ADMIN})
ERP_USERS = frozenset({ADMIN, INTEGRATION})
ODATA_READERS = frozenset({ADMIN, AVAILABILITY})
EVERY_ROLE = frozenset(Role)
READS = frozenset({"GET", "HEAD"})

# Anyone may call these (issue 2: health, metrics, API docs, and the token endpoint itself).
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
    ("POST", "/api/v1/auth/token"),
}
# The CRM's change notifications: no user signs in, the CRM sends the webhook key
# (tests/api/test_crm_notifications.py: a missing or wrong key is a counted 401).
WEBHOOK_KEYED = {("POST", "/api/v1/crm/notifications")}
CONSOLE_STATIC = "/static"  # the console's htmx, stylesheet and script: public files
PUBLIC_HEAD = {("HEAD", path) for method, path in PUBLIC if method == "GET"}

ERP_RESOURCES = (
    "currencies",
    "units-of-measure",
    "locations",
    "items",
    "resources",
    "customer-price-groups",
    "sales-prices",
    "salespeople",
    "customers",
    "contacts",
    "opportunities",
    "purchase-lines",
    "item-ledger-entries",
    "customer-ledger-entries",
    "sales-quotes",
    "sales-orders",
    "sales-invoices",
)


@dataclass(frozen=True)
class Rule:
    """Callers of ``prefix`` (and every path below it) with one of ``methods`` need ``roles``."""

    prefix: str
    roles: frozenset[Role]
    methods: frozenset[str] | None = None  # None: every method


# The longest matching prefix wins; a method-specific rule beats an any-method one.
ROUTE_ROLES: tuple[Rule, ...] = (
    Rule("/api/v1/auth/me", EVERY_ROLE),
    Rule("/api/v1/users", ADMIN_ONLY),
    Rule("/odata", ODATA_READERS),
    Rule("/ODataV3", ODATA_READERS),  # BC's V3 URL form of the same service
    *(Rule(f"/api/v1/{resource}", ERP_USERS) for resource in ERP_RESOURCES),
    # Set-up, mappings and couplings: the integration user reads, only an admin changes.
    Rule("/api/v1/connection", ADMIN_ONLY),
    Rule("/api/v1/connection", ERP_USERS, READS),
    Rule("/api/v1/assisted-setup", ADMIN_ONLY),
    Rule("/api/v1/mappings", ADMIN_ONLY),
    Rule("/api/v1/mappings", ERP_USERS, READS),
    Rule("/api/v1/option-mappings", ADMIN_ONLY),
    Rule("/api/v1/option-mappings", ERP_USERS, READS),
    Rule("/api/v1/couplings", ADMIN_ONLY),
    Rule("/api/v1/couplings", ERP_USERS, READS),
    Rule("/api/v1/sync-jobs", ADMIN_ONLY),  # the sync log
    Rule("/api/v1/sync-jobs", ERP_USERS, READS),
    Rule("/api/v1/job-queue-entries", ADMIN_ONLY),
    Rule("/api/v1/sync", ADMIN_ONLY),  # sync actions, deleting old sync jobs
    Rule("/api/v1/sync", ERP_USERS, READS),  # progress
    Rule("/api/v1/customer-statistics", ERP_USERS, READS),
    Rule("/api/v1/sales-integration", ADMIN_ONLY),  # create the ERP order of a CRM order
    Rule("/api/v1/sales-integration", ERP_USERS, READS),  # submitted CRM orders
    Rule("/api/v1/crm", ADMIN_ONLY),
    Rule("/api/v1/crm", ERP_USERS, READS),  # whether CRM change notifications arrive
)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template, e.g. /api/v1/users/{user_name}
    url: str  # with plausible values for the path parameters


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def allowed_roles(method: str, path: str) -> frozenset[Role] | None:
    """The roles that may call the endpoint, or None when no rule classifies it."""
    matching = [
        rule
        for rule in ROUTE_ROLES
        if _is_under(path, rule.prefix) and (rule.methods is None or method in rule.methods)
    ]
    if not matching:
        return None
    best = max(matching, key=lambda rule: (len(rule.prefix), rule.methods is not None))
    return best.roles


# Values for path parameters: by name where a realistic value matters, else by type.
SAMPLE_BY_NAME = {"resource_path": "v4/$metadata", "user_name": "someone"}
SAMPLE_BY_TYPE: dict[Any, str] = {int: "1", uuid.UUID: str(uuid.UUID(int=1))}
SAMPLE_BY_CONVERTOR = {
    IntegerConvertor: "1",
    UUIDConvertor: str(uuid.UUID(int=1)),
    PathConvertor: "sample/path",
}
_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_]+)?}")


def _sample(route: BaseRoute, convertors: dict[str, Any], name: str) -> str:
    if name in SAMPLE_BY_NAME:
        return SAMPLE_BY_NAME[name]
    if isinstance(route, APIRoute):
        for param in route.dependant.path_params:
            if param.name == name and param.field_info.annotation in SAMPLE_BY_TYPE:
                return SAMPLE_BY_TYPE[param.field_info.annotation]
    return SAMPLE_BY_CONVERTOR.get(type(convertors.get(name)), "sample")


def _fill(path: str, route: BaseRoute, convertors: dict[str, Any]) -> str:
    return _PARAM.sub(lambda match: _sample(route, convertors, match.group(1)), path)


def walk_routes(routes: Sequence[BaseRoute], prefix: str = "") -> Iterator[Endpoint]:
    """Every (method, path) the app answers, through included routers and mounts."""
    for context in iter_route_contexts(routes):
        route = context.original_route
        path = prefix + (context.path or "")
        if isinstance(route, ConsoleRoute) or path == CONSOLE_STATIC:
            continue  # the web console signs in by cookie: tests/web/test_console_routes.py
        if isinstance(route, Mount):
            yield from walk_routes(route.routes, path)
            continue
        if not context.methods:
            pytest.fail(f"Route {path!r} ({type(route).__name__}) has no HTTP methods: classify it")
        convertors = getattr(context, "param_convertors", None) or {}
        for method in sorted(context.methods):
            yield Endpoint(method, path, _fill(path, route, convertors))


def app_endpoints(app: FastAPI) -> list[Endpoint]:
    low_priority = list(getattr(app.router, "_iter_low_priority_routes", list)())
    assert low_priority == [], f"frontend/low-priority routes are not classified: {low_priority}"
    return list(walk_routes(app.routes))


def protected_endpoints(app: FastAPI) -> list[Endpoint]:
    unsigned = PUBLIC | PUBLIC_HEAD | WEBHOOK_KEYED
    return [e for e in app_endpoints(app) if (e.method, e.path) not in unsigned]


def test_every_route_is_classified(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), should_migrate=False)  # routes only, no I/O
    endpoints = app_endpoints(app)
    unclassified = [
        f"{e.method} {e.path}"
        for e in endpoints
        if (e.method, e.path) not in PUBLIC | PUBLIC_HEAD | WEBHOOK_KEYED
        and allowed_roles(e.method, e.path) is None
    ]

    assert len(endpoints) > len(PUBLIC)
    assert unclassified == [], (
        "These routes are not in ROUTE_ROLES (tests/api/test_route_security.py); "
        f"add a Rule saying which roles may call them: {unclassified}"
    )


def test_the_classification_table_follows_the_role_table() -> None:
    assert allowed_roles("GET", "/api/v1/users/x/keys") == ADMIN_ONLY
    assert allowed_roles("GET", "/api/v1/users-and-more") is None  # prefixes end at a "/"
    assert allowed_roles("GET", "/api/v1/mappings/x") == ERP_USERS
    assert allowed_roles("PATCH", "/api/v1/mappings/x") == ADMIN_ONLY
    assert allowed_roles("GET", "/odata/{resource_path:path}") == ODATA_READERS
    assert allowed_roles("GET", "/ODataV3/{resource_path:path}") == ODATA_READERS


async def test_public_routes_answer_anonymous_callers(client: httpx.AsyncClient) -> None:
    for method, path in sorted(PUBLIC):
        response = await client.request(method, path)
        assert response.status_code not in (401, 403), f"{method} {path} -> {response.status_code}"


async def test_every_protected_route_refuses_anonymous_callers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    failures = []
    endpoints = protected_endpoints(app)
    for endpoint in endpoints:
        response = await client.request(endpoint.method, endpoint.url)
        if response.status_code != 401 or "www-authenticate" not in response.headers:
            failures.append(f"{endpoint.method} {endpoint.url} -> {response.status_code}")

    assert len(endpoints) > 10
    assert failures == [], f"anonymous callers must get 401 with WWW-Authenticate: {failures}"


@pytest.fixture
async def role_headers(
    client: httpx.AsyncClient, session: AsyncSession
) -> dict[Role, dict[str, str]]:
    """A bearer token for a user holding exactly one role, per role."""
    for role in Role:
        await factories.create_user(session, user_name=role.value, roles=(role,))
    await session.commit()
    return {role: await factories.bearer_headers(client, user_name=role.value) for role in Role}


async def _role_failures(
    app: FastAPI, client: httpx.AsyncClient, role: Role, headers: dict[str, str]
) -> tuple[int, list[str]]:
    failures = []
    checked = 0
    for endpoint in protected_endpoints(app):
        allowed = allowed_roles(endpoint.method, endpoint.path)
        if allowed is None:
            continue  # reported by test_every_route_is_classified
        response = await client.request(endpoint.method, endpoint.url, headers=headers)
        checked += 1
        status = response.status_code
        if role in allowed and (status in (401, 403) or status >= 500):
            failures.append(f"{role.value}: {endpoint.method} {endpoint.url} -> {status}, allowed")
        elif role not in allowed and status != 403:
            failures.append(f"{role.value}: {endpoint.method} {endpoint.url} -> {status}, not 403")
    return checked, failures


async def test_every_route_admits_exactly_its_roles(
    app: FastAPI, client: httpx.AsyncClient, role_headers: dict[Role, dict[str, str]]
) -> None:
    """A user holding one role: 403 where the role is not allowed, served where it is.

    The least privileged role goes first, so handlers run for admins only after every
    refusal has been checked against an untouched database.
    """
    failures = []
    for role in (AVAILABILITY, INTEGRATION, ADMIN):
        checked, role_failures = await _role_failures(app, client, role, role_headers[role])
        assert checked > 10
        failures += role_failures

    assert failures == [], f"wrong answers for users holding one role: {failures}"
