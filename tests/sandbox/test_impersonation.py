"""Impersonation (``MSCRMCallerID`` / ``CallerObjectId``) and ordinary users from the control
API: how a test acts as a salesperson over HTTP."""

from __future__ import annotations

import httpx

from app.sandbox.security import SEEDED_ROLES
from tests.fixtures.sandbox import RunningSandbox, crm_person
from tests.sandbox.conftest import entity_id, error_of


async def _user(sandbox: RunningSandbox, **body: object) -> dict[str, object]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{sandbox.control_url}/users", json=body)
    assert response.status_code == 201, response.text
    user: dict[str, object] = response.json()
    return user


async def test_control_api_creates_ordinary_users(sandbox: RunningSandbox) -> None:
    """The control API makes licensed, interactive users (access mode 0) with an Entra
    object id, listed next to the application user; a user needs a last name."""
    made = await _user(sandbox, firstname="Sam", lastname="Seller")
    assert made["fullname"] == "Sam Seller" and made["accessmode"] == 0
    assert made["azureactivedirectoryobjectid"]
    async with httpx.AsyncClient() as client:
        listed = (await client.get(f"{sandbox.control_url}/users")).json()
        refused = await client.post(f"{sandbox.control_url}/users", json={"firstname": "X"})
    assert {u["systemuserid"] for u in listed} == {made["systemuserid"], sandbox.state.user_id}
    assert refused.status_code == 400


async def test_impersonation_needs_the_privilege(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    """Dataverse lets a caller act on behalf of another user only when a role assigned to
    the caller grants prvActOnBehalfOfAnotherUser (the Delegate role has it); otherwise the
    request is refused (403) and nothing is written."""
    person = await _user(sandbox, lastname="Seller")
    refused = await api.post(
        "accounts", json={"name": "As Sam"}, headers={"MSCRMCallerID": str(person["systemuserid"])}
    )
    assert refused.status_code == 403
    assert "prvActOnBehalfOfAnotherUser" in error_of(refused)["message"]
    assert sandbox.state.count("accounts") == 0
    grant = await api.post(
        f"systemusers({sandbox.state.user_id})/systemuserroles_association/$ref",
        json={"@odata.id": f"{sandbox.api_url}roles({SEEDED_ROLES['Delegate']})"},
    )
    assert grant.status_code == 204
    allowed = await api.post(
        "accounts", json={"name": "As Sam"}, headers={"MSCRMCallerID": str(person["systemuserid"])}
    )
    assert allowed.status_code == 204


async def test_writes_are_stamped_with_the_impersonated_user(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    """With MSCRMCallerID (system user id) or CallerObjectId (Entra object id) the record's
    createdby/modifiedby and default owner are the impersonated user, and
    createdonbehalfby/modifiedonbehalfby the caller; WhoAmI answers as that user."""
    person = await crm_person(sandbox)
    app_user = sandbox.state.user_id
    as_person = {"MSCRMCallerID": person}
    account = entity_id(await api.post("accounts", json={"name": "Mine"}, headers=as_person))
    row = (await api.get(f"accounts({account})")).json()
    assert row["_createdby_value"] == row["_modifiedby_value"] == row["_ownerid_value"] == person
    assert row["_createdonbehalfby_value"] == app_user
    object_id = sandbox.state.get("systemusers", person)["azureactivedirectoryobjectid"]  # type: ignore[index]
    by_object = {"CallerObjectId": str(object_id).upper()}
    await api.patch(f"accounts({account})", json={"name": "Ours"}, headers=by_object)
    assert (await api.get(f"accounts({account})")).json()["_modifiedby_value"] == person
    await api.patch(f"accounts({account})", json={"name": "Integration"})
    row = (await api.get(f"accounts({account})")).json()
    assert row["_modifiedby_value"] == app_user and row["_modifiedonbehalfby_value"] is None
    who = (await api.get("WhoAmI", headers=as_person)).json()
    assert who["UserId"] == person


async def test_unknown_or_disabled_users_cannot_be_impersonated(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    """An impersonation header naming no user, a disabled user, or two different users is
    refused; so is a value that is no GUID."""
    await crm_person(sandbox)
    unknown = await api.get(
        "WhoAmI", headers={"MSCRMCallerID": "00000000-0000-0000-0000-00000000000f"}
    )
    assert unknown.status_code == 404
    disabled = await _user(sandbox, lastname="Gone", isdisabled=True)
    refused = await api.get("WhoAmI", headers={"MSCRMCallerID": str(disabled["systemuserid"])})
    assert refused.status_code == 400
    other = await _user(sandbox, lastname="Other")
    both = {
        "MSCRMCallerID": str(other["systemuserid"]),
        "CallerObjectId": str(disabled["azureactivedirectoryobjectid"]),
    }
    assert (await api.get("WhoAmI", headers=both)).status_code == 400
    assert (await api.get("WhoAmI", headers={"MSCRMCallerID": "sam"})).status_code == 400


async def test_a_batch_acts_as_the_user_its_header_names(
    api: httpx.AsyncClient, sandbox: RunningSandbox
) -> None:
    """An impersonation header on the $batch request applies to each part that names no
    user of its own."""
    person = await crm_person(sandbox)
    body = (
        "--batch_x\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "POST accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"name": "In a batch"}\r\n--batch_x--\r\n'
    )
    response = await api.post(
        "$batch",
        content=body,
        headers={"Content-Type": "multipart/mixed; boundary=batch_x", "MSCRMCallerID": person},
    )
    assert response.status_code == 200
    (row,) = sandbox.state.rows("accounts")
    assert row["_createdby_value"] == person
