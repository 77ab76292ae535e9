"""The stored CRM secret cannot be sent somewhere new, and the test never echoes a body.

An admin (or a stolen admin token) may change the URLs; without these rules, pointing the
token URL at a host of theirs and pressing "test connection" delivered the stored client
secret to it. Over real HTTP: the live API, the sandbox as the CRM, and a foreign host
that records what it receives.
"""

from __future__ import annotations

import socket

import httpx
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.integration import ConnectionSetup
from tests.connection.conftest import configure
from tests.connection.foreign_host import Answer, foreign_host
from tests.fixtures.sandbox import RunningSandbox

API = "/api/v1"
MARKER = "FOREIGN-BODY-7c1e"  # would show up if a test result echoed what it was answered


async def _stored(session: AsyncSession) -> ConnectionSetup:
    session.expire_all()
    return (await session.exec(select(ConnectionSetup))).one()


async def test_a_token_url_change_without_the_secret_clears_it(
    live: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox, session: AsyncSession
) -> None:
    await configure(live, admin, sandbox)
    with foreign_host() as evil:
        moved = await live.patch(
            f"{API}/connection", json={"token_url": evil.token_url}, headers=admin
        )
        tested = await live.post(f"{API}/connection/test", headers=admin)

    assert moved.status_code == 200, moved.text
    assert moved.json()["client_secret"] == {"is_set": False, "hint": None}
    assert (await _stored(session)).client_secret_encrypted == ""
    assert tested.status_code == 400
    assert "client_secret" in tested.json()["detail"]
    assert evil.received == []  # the stored secret went nowhere


async def test_a_token_url_change_with_the_secret_keeps_the_new_one(
    live: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox
) -> None:
    """Whoever gives the secret again knows it: only that secret goes to the new place."""
    await configure(live, admin, sandbox)
    answers = {"/token": Answer(401, f'{{"error": "invalid_client", "x": "{MARKER}"}}')}
    with foreign_host(answers) as other:
        body = {"token_url": other.token_url, "client_secret": "a secret I typed in"}
        moved = await live.patch(f"{API}/connection", json=body, headers=admin)
        tested = await live.post(f"{API}/connection/test", headers=admin)

    assert moved.json()["client_secret"]["is_set"] is True
    received = other.everything_received()
    assert "a+secret+I+typed+in" in received
    assert sandbox.config.client_secret not in received
    assert tested.json()["ok"] is False


async def test_a_crm_host_change_clears_the_secret_but_a_path_change_does_not(
    live: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox
) -> None:
    await configure(live, admin, sandbox)
    same_host = await live.patch(
        f"{API}/connection", json={"server_address": f"{sandbox.base_url}/org"}, headers=admin
    )
    assert same_host.json()["client_secret"]["is_set"] is True
    other_host = sandbox.base_url.replace("127.0.0.1", "localhost")  # same port, new host
    moved = await live.patch(
        f"{API}/connection", json={"server_address": other_host}, headers=admin
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["client_secret"]["is_set"] is False


async def test_an_authentication_type_change_needs_the_secret_again(
    live: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox
) -> None:
    await configure(live, admin, sandbox, authentication_type="ad", user_name="crm\\svc",
                    password="the stored password", client_secret="")  # fmt: skip
    body = {"authentication_type": "ifd"}
    refused = await live.patch(f"{API}/connection", json=body, headers=admin)
    given = await live.patch(
        f"{API}/connection", json={**body, "password": "the password again"}, headers=admin
    )

    assert refused.status_code == 400
    assert "password" in refused.json()["detail"]
    assert given.status_code == 200, given.text
    assert given.json()["password"]["is_set"] is True


async def test_the_assisted_setup_asks_for_the_secret_again_for_a_new_place(
    live: httpx.AsyncClient, admin: dict[str, str], sandbox: RunningSandbox
) -> None:
    await configure(live, admin, sandbox)
    steps = f"{API}/assisted-setup/steps"
    with foreign_host() as evil:
        assert (await live.post(f"{API}/assisted-setup", headers=admin)).status_code == 201
        url = await live.put(
            f"{steps}/crm_url", json={"server_address": sandbox.base_url}, headers=admin
        )
        assert url.status_code == 200, url.text
        credentials = {"client_id": sandbox.config.client_id, "token_url": evil.token_url}
        refused = await live.put(f"{steps}/credentials", json=credentials, headers=admin)
        kept = await live.put(
            f"{steps}/credentials", json={"client_id": sandbox.config.client_id}, headers=admin
        )
        finished = await live.post(f"{API}/assisted-setup/finish", headers=admin)

    assert refused.status_code == 400
    assert "client_secret" in refused.json()["detail"]
    assert kept.status_code == 200, kept.text  # same place as before: the stored one counts
    assert finished.status_code == 200, finished.text
    assert evil.received == []


async def test_test_results_are_classified_never_the_answer_itself(
    live: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    token = Answer(200, '{"access_token": "t", "token_type": "Bearer", "expires_in": 3600}')
    cases = [
        ({"/token": Answer(401, f'{{"error": "invalid_client", "error_description": '
                                f'"{MARKER}"}}')},
         "token", "refused the client id or client secret (HTTP 401, invalid_client)"),
        ({"/token": Answer(400, f"<html>{MARKER}</html>", "text/html")},
         "token", "refused the token request (HTTP 400)"),
        ({"/token": Answer(200, f"<html>{MARKER}</html>", "text/html")},
         "token", "not an OAuth token answer"),
        ({"/token": token, "/WhoAmI": Answer(500, f'{{"error": {{"message": "{MARKER}"}}}}')},
         "whoami", "the CRM answered an error (HTTP 500)"),
        ({"/token": token, "/WhoAmI": Answer(403, f'{{"error": {{"code": "0x80040220", '
                                                  f'"message": "{MARKER}"}}}}')},
         "whoami", "refused the application's token (HTTP 403, 0x80040220)"),
        ({"/token": token, "/WhoAmI": Answer(200, f"<html>{MARKER}</html>", "text/html")},
         "whoami", "not a Dataverse Web API answer"),
    ]  # fmt: skip
    for answers, step_name, reason in cases:
        with foreign_host(answers) as crm:
            body = {"server_address": crm.base_url, "token_url": crm.token_url,
                    "client_id": "app", "client_secret": "s" * 20}  # fmt: skip
            assert (await live.patch(f"{API}/connection", json=body, headers=admin)).is_success
            response = await live.post(f"{API}/connection/test", headers=admin)
        assert response.status_code == 200, response.text
        assert MARKER not in response.text
        failed = [step for step in response.json()["steps"] if not step["ok"]]
        assert [step["name"] for step in failed] == [step_name], response.text
        assert reason in failed[0]["detail"], failed[0]["detail"]


async def test_a_closed_port_and_a_refused_connection_read_alike(
    live: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    body = {"server_address": closed, "token_url": f"{closed}/t/oauth2/v2.0/token",
            "client_id": "app", "client_secret": "s" * 20}  # fmt: skip
    await live.patch(f"{API}/connection", json=body, headers=admin)
    response = await live.post(f"{API}/connection/test", headers=admin)

    [step] = response.json()["steps"]
    assert step["detail"] == (
        "the token endpoint gave no answer (the host cannot be reached, refused the "
        "connection or timed out)"
    )


async def test_only_admins_see_the_last_characters_of_secrets(
    live: httpx.AsyncClient,
    admin: dict[str, str],
    reader: dict[str, str],
    sandbox: RunningSandbox,
) -> None:
    await configure(live, admin, sandbox)
    as_admin = (await live.get(f"{API}/connection", headers=admin)).json()
    as_reader = (await live.get(f"{API}/connection", headers=reader)).json()

    assert as_admin["client_secret"] == {"is_set": True, "hint": "…" + "sandbox-secret"[-4:]}
    assert as_reader["client_secret"] == {"is_set": True, "hint": None}
