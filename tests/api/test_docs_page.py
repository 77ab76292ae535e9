"""``/docs`` over HTTP: Swagger UI served by the app itself, and the OpenAPI it shows.

The page and every file it loads come from the service (no CDN, no other host), and the
OpenAPI document declares the OAuth2 password flow the "Authorize" dialog uses.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import Role
from tests import factories

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
# No user signs in: the token endpoint, and the CRM's notifications (keyed by the webhook key).
UNSIGNED = ("/api/v1/auth/token", "/api/v1/crm/notifications")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


async def test_the_docs_page_and_every_file_it_loads_come_from_the_service(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "cdn" not in html.lower()
    assets = ASSET.findall(html)
    assert len(assets) == 3, assets  # script, style sheet, icon
    for url in assets:
        assert url.startswith("/docs/assets/"), url  # this service, not another host
        response = await client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 500, url
        suffix = url[url.rindex(".") :]
        assert CONTENT_TYPES[suffix] in response.headers["content-type"], url
    # Nothing else the page names leaves the service: no absolute URL at all.
    assert re.findall(r"https?://", html) == []
    assert "'validatorUrl': null" in html or '"validatorUrl": null' in html
    assert (await client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    assert (await client.get("/redoc")).status_code == 404  # it would load from a CDN


async def test_openapi_declares_the_password_flow_the_authorize_dialog_uses(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes == {
        "sign-in": {
            "type": "oauth2",
            "description": schemes["sign-in"]["description"],
            "flows": {"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/token"}},
        }
    }
    protected = [
        operation
        for path, item in spec["paths"].items()
        for operation in item.values()
        if path.startswith("/api/v1/") and path not in UNSIGNED
    ]
    assert protected and all(op.get("security") == [{"sign-in": []}] for op in protected)

    # What the dialog sends (OAuth2 password grant, form-encoded), and the token it gets.
    await factories.create_user(session, user_name="alice", roles=(Role.integration_admin,))
    await session.commit()
    form = {"grant_type": "password", "username": "alice", "password": factories.PASSWORD}
    token = await client.post("/api/v1/auth/token", data=form)
    assert token.status_code == 200 and token.json()["token_type"] == "bearer"
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=bearer)).json()["user_name"] == "alice"


async def test_every_operation_has_a_summary(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    missing = [
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if not operation.get("summary", "").strip()
    ]
    assert missing == []


def _models() -> dict[str, type[BaseModel]]:
    """Every pydantic model the app has built, by class name (the OpenAPI schema's title);
    the ERP resources' models are made at import with ``create_model``."""
    found: dict[str, type[BaseModel]] = {}
    pending: list[type[BaseModel]] = [BaseModel]
    while pending:
        for model in pending.pop().__subclasses__():
            if model.__module__.startswith("app."):
                found.setdefault(model.__name__, model)
            pending.append(model)
    return found


def _body_model(content: dict[str, Any]) -> str:
    schema = content["schema"]
    refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
    [ref] = [r for r in refs if r]
    return str(ref).rsplit("/", 1)[-1]


async def test_every_field_has_a_description_and_every_json_body_a_valid_example(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    undescribed = [
        f"{name}.{field}"
        for name, schema in spec["components"]["schemas"].items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description", "").strip()
    ]
    assert undescribed == []
    models = _models()
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None or path in UNSIGNED:  # the CRM's own body, shown by example
                continue
            assert "example" in content, f"{method.upper()} {path}"
            if path.endswith("/bulk-upsert"):  # a list of the collection's create bodies
                single = spec["paths"][path.removesuffix("/bulk-upsert")]["post"]
                name = _body_model(single["requestBody"]["content"]["application/json"])
                examples = content["example"]
                assert isinstance(examples, list) and examples
            else:
                name, examples = _body_model(content), [content["example"]]
            for example in examples:
                models[name].model_validate(example)  # raises if the example is not valid
                checked += 1
    assert checked >= 60
