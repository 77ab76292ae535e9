"""Sign-in, sessions, sign-out, CSRF and roles of the console, over its HTTP interface."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import users
from app.models.security import Role
from tests.factories import create_user
from tests.web.conftest import Console, ConsoleFactory, sign_in


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_root_without_a_session_goes_to_sign_in(app: FastAPI) -> None:
    async with _client(app) as http:
        answer = await http.get("/", headers={"accept": "text/html"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-in"
        deep = await http.get("/sync-log?status=failed")
        assert deep.headers["location"] == "/sign-in?next=%2Fsync-log%3Fstatus%3Dfailed"
        form = await http.get("/sign-in")
        assert form.status_code == 200
        assert "content-security-policy" in form.headers
        assert '<label for="password">Password</label>' in form.text


async def test_session_cookie_is_httponly_lax_and_signed(
    app: FastAPI, session: AsyncSession
) -> None:
    await create_user(session, user_name="ann")
    await session.commit()
    async with _client(app) as http:
        answer = await sign_in(http, "ann")
        assert answer.status_code == 303, answer.text
        cookie = answer.headers["set-cookie"]
        assert "salesbridge_session=" in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain http here
        overview = await http.get("/")
        assert overview.status_code == 200
        assert "<h1>Overview</h1>" in overview.text
        # A tampered cookie is no session.
        value = http.cookies["salesbridge_session"]
        http.cookies.set("salesbridge_session", value[:-1] + ("0" if value[-1] != "0" else "1"))
        assert (await http.get("/")).status_code == 303


async def test_wrong_password_and_access_keys_do_not_sign_in(
    app: FastAPI, session: AsyncSession
) -> None:
    await create_user(session, user_name="bob")
    await session.commit()
    async with _client(app) as http:
        wrong = await sign_in(http, "bob", "not the password at all")
        assert wrong.status_code == 401
        assert "Incorrect user name, password or access key." in wrong.text
        key_shaped = await sign_in(http, "bob", "sbk_ABCDEFGHJKLM_" + "a" * 43)
        assert key_shaped.status_code == 401
        assert "not for the console" in key_shaped.text
        assert "salesbridge_session" not in http.cookies


async def test_sign_in_is_throttled_like_the_token_endpoint(
    app: FastAPI, session: AsyncSession
) -> None:
    await create_user(session, user_name="carl")
    await session.commit()
    async with _client(app) as http:
        for _ in range(5):  # the suite's login_max_failures
            assert (await sign_in(http, "carl", "wrong password 123")).status_code == 401
        refused = await sign_in(http, "carl")  # even the right password, for a window
        assert refused.status_code == 429
        assert "retry-after" in refused.headers
        token = await http.post(
            "/api/v1/auth/token",
            data={"username": "carl", "password": "correct horse battery staple"},
        )
        assert token.status_code == 429  # one counter for the API and the console


async def test_write_without_csrf_token_is_refused(console_for: ConsoleFactory) -> None:
    console = await console_for("admin")
    refused = await console.http.post(
        "/users", data={"user_name": "mallory", "roles": "integration-admin"}
    )
    assert refused.status_code == 403
    assert "security token" in refused.text
    forged = await console.http.post(
        "/users",
        data={"user_name": "mallory", "roles": "integration-admin", "csrf_token": "0" * 64},
    )
    assert forged.status_code == 403
    listed = await console.http.get("/users")
    assert "mallory" not in listed.text
    accepted = await console.post("/users", {"user_name": "dora", "roles": "integration-user"})
    assert accepted.status_code == 204, accepted.text
    assert accepted.headers["hx-redirect"] == "/users/dora"


async def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    console_for: ConsoleFactory,
) -> None:
    console = await console_for("admin")
    copied = console.http.cookies["salesbridge_session"]
    answer = await console.post("/sign-out", htmx=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in"
    console.http.cookies.set("salesbridge_session", copied)
    assert (await console.http.get("/")).status_code == 303


async def test_password_reset_ends_older_sessions(
    console_for: ConsoleFactory, session: AsyncSession
) -> None:
    admin = await console_for("admin")
    other = await console_for("erin", Role.integration_user)
    assert (await other.http.get("/sync-log")).status_code == 200
    reset = await admin.post("/users/erin/reset-password")
    assert reset.status_code == 200
    assert "shown only now" in reset.text
    assert (await other.http.get("/sync-log")).status_code == 303
    # A role change ends them too.
    again = await console_for("fred", Role.integration_user)
    async with session.begin():
        await users.set_roles(session, user_name="fred", roles=[Role.product_availability])
    assert (await again.http.get("/availability")).status_code == 303


async def test_pages_follow_the_rest_api_roles(console_for: ConsoleFactory) -> None:
    reader = await console_for("ida", Role.integration_user)
    for path in ("/", "/sync-log", "/mappings", "/couplings", "/connection", "/sales"):
        assert (await reader.http.get(path)).status_code == 200, path
    for path in ("/users", "/users/ida", "/jobs", "/setup", "/availability"):
        assert (await reader.http.get(path)).status_code == 403, path
    overview = (await reader.http.get("/")).text
    assert 'href="/users"' not in overview and 'href="/jobs"' not in overview
    refused = await reader.post("/sync/full")
    assert refused.status_code == 403
    assert "integration-admin" in refused.text

    pa = await console_for("crm", Role.product_availability)
    home = await pa.http.get("/")
    assert home.status_code == 303 and home.headers["location"] == "/availability"
    page = await pa.http.get("/availability")
    assert page.status_code == 200
    assert [line for line in page.text.splitlines() if '<li><a href="' in line] == [
        '      <li><a href="/availability" aria-current="page">Item availability</a></li>'
    ]
    for path in ("/sync-log", "/connection", "/users", "/mappings"):
        assert (await pa.http.get(path)).status_code == 403, path


async def test_unknown_console_page_is_html_and_api_stays_json(console_for: ConsoleFactory) -> None:
    console: Console = await console_for("admin")
    missing = await console.http.get("/no-such-page", headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert "There is no console page at this address." in missing.text
    api = await console.http.get("/api/v1/no-such", headers={"accept": "text/html"})
    assert api.status_code == 404
    assert api.json()["error"] == "HTTPError"
