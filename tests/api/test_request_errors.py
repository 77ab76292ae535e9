"""The commonest curl mistakes get an answer that names the cause (one code: ValidationFailed)."""

from __future__ import annotations

import httpx
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.security import Role
from tests import factories


async def _admin(client: httpx.AsyncClient, session: AsyncSession) -> dict[str, str]:
    await factories.create_user(session, user_name="admin", roles=(Role.integration_admin,))
    await session.commit()
    return await factories.bearer_headers(client, user_name="admin")


async def test_malformed_json_names_the_position_and_reason(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await _admin(client, session)
    body = b'{"user_name": "bob",\n "roles": ["integration-user"],}'
    response = await client.post(
        "/api/v1/users", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationFailed"
    assert response.json()["detail"] == (
        "The request body is not valid JSON: Expecting property name enclosed in double quotes"
        " at line 2, column 32 (character 53)."
    )


async def test_json_without_its_content_type_is_named(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await _admin(client, session)
    body = b'{"user_name": "bob", "roles": ["integration-user"]}'
    headers = {**admin, "Content-Type": "application/x-www-form-urlencoded"}  # curl -d's
    response = await client.post("/api/v1/users", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationFailed"
    detail = response.json()["detail"]
    assert "looks like JSON but its Content-Type is application/x-www-form-urlencoded" in detail
    assert "'Content-Type: application/json'" in detail


async def test_json_to_the_token_endpoint_says_to_send_form_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/api/v1/auth/token", json={"username": "admin", "password": "x" * 12}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("Send form fields username and password")


async def test_a_schema_problem_has_the_same_code_as_a_row_problem(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    admin = await _admin(client, session)
    schema = await client.post("/api/v1/users", json={"user_name": "bob"}, headers=admin)
    rows = await client.post(
        "/api/v1/items/bulk-upsert", json={"items": [{"no": ""}]}, headers=admin
    )
    assert schema.status_code == rows.status_code == 422
    assert schema.json()["error"] == rows.json()["error"] == "ValidationFailed"


async def test_odata_401_says_what_it_accepts(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    await factories.create_user(session, user_name="crm", roles=(Role.product_availability,))
    await session.commit()
    nothing = await client.get("/odata/v4/ItemAvailability")
    password = await client.get("/odata/v4/ItemAvailability", auth=("crm", factories.PASSWORD))
    for response in (nothing, password):
        assert response.status_code == 401
        message = response.json()["error"]["message"]
        assert "web service access keys (not its password), or a bearer token" in message
        assert "password or access key" not in message
