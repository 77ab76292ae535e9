"""Who sees what, in a real browser against a real serve: roles as in the REST API, CSRF,
sign-out, and a session cookie from before a password reset."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, BrowserContext, expect

from app.models.security import Role
from tests.browser.conftest import PASSWORD, add_user, sign_in
from tests.fixtures.browser import new_context, screenshot, watch
from tests.fixtures.live_service import LiveService


def _nav_links(html: str) -> list[str]:
    return [line.strip() for line in html.splitlines() if line.strip().startswith('<li><a href="')]


async def test_product_availability_user_sees_only_item_availability(
    context: BrowserContext, live: LiveService
) -> None:
    await add_user(live, "stock", Role.product_availability)
    page = await context.new_page()
    await sign_in(page, live, "stock", PASSWORD)
    await expect(page).to_have_url(f"{live.url}/availability")
    nav = page.get_by_role("navigation", name="Main").get_by_role("link")
    await expect(nav).to_have_count(1)
    await expect(nav).to_have_text("Item availability")
    await screenshot(page, "access-product-availability")
    for path in ("/sync-log", "/connection", "/users", "/jobs", "/mappings"):
        answer = await page.goto(f"{live.url}{path}")
        assert answer is not None and answer.status == 403, path
        await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


async def test_integration_user_cannot_reach_users_keys_or_secrets(
    context: BrowserContext, live: LiveService
) -> None:
    await add_user(live, "reader", Role.integration_user)
    page = await context.new_page()
    await sign_in(page, live, "reader", PASSWORD)
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Sync log")).to_be_visible()
    for hidden in ("Users and keys", "Job queue", "Assisted setup"):
        await expect(nav.get_by_role("link", name=hidden)).to_have_count(0)
    for path in ("/users", "/users/admin", "/jobs", "/setup"):
        answer = await page.goto(f"{live.url}{path}")
        assert answer is not None and answer.status == 403, path
    await page.goto(f"{live.url}/connection")
    await expect(page.get_by_role("heading", name="Connection setup")).to_be_visible()
    # Secrets are neither shown nor editable: no password inputs, no save button.
    await expect(page.locator("input[type=password]")).to_have_count(0)
    await expect(page.get_by_role("button", name="Save the connection setup")).to_have_count(0)
    await expect(page.get_by_role("button", name="Test connection")).to_have_count(0)
    await screenshot(page, "access-integration-user-connection")
    # Posting an admin action anyway (with a valid CSRF token) is refused.
    token = await page.locator("input[name=csrf_token]").first.input_value()
    refused = await page.request.post(
        f"{live.url}/users",
        form={"csrf_token": token, "user_name": "x", "roles": "integration-admin"},
    )
    assert refused.status == 403


async def test_write_without_csrf_token_is_refused(
    context: BrowserContext, live: LiveService
) -> None:
    await add_user(live, "boss", Role.integration_admin)
    page = await context.new_page()
    await sign_in(page, live, "boss", PASSWORD)
    # The browser's cookie goes along; only the token is missing (as from another site).
    answer = await page.request.post(
        f"{live.url}/users", form={"user_name": "mallory", "roles": "integration-admin"}
    )
    assert answer.status == 403
    assert "security token" in await answer.text()
    await page.goto(f"{live.url}/users")
    await expect(page.get_by_role("link", name="mallory")).to_have_count(0)


async def test_sign_out_ends_the_session(
    browser: Browser, context: BrowserContext, live: LiveService
) -> None:
    await add_user(live, "leaver", Role.integration_user)
    page = await context.new_page()
    await sign_in(page, live, "leaver", PASSWORD)
    cookies = await context.cookies()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The cookie as it was before signing out, replayed from another browser: no session.
    other = await new_context(browser)
    try:
        await other.add_cookies(cookies)
        replay = await other.new_page()
        await replay.goto(f"{live.url}/sync-log")
        await expect(replay.get_by_role("heading", name="Sign in")).to_be_visible()
    finally:
        await other.close()


async def test_password_reset_ends_older_sessions(
    browser: Browser, context: BrowserContext, live: LiveService
) -> None:
    await add_user(live, "worker", Role.integration_user)
    await add_user(live, "chief", Role.integration_admin)
    page = await context.new_page()
    log = watch(page)
    await sign_in(page, live, "worker", PASSWORD)
    await page.goto(f"{live.url}/sync-log")
    await expect(page.get_by_role("heading", name="Sync log")).to_be_visible()
    admin_context = await new_context(browser)
    try:
        admin = await admin_context.new_page()
        await sign_in(admin, live, "chief", PASSWORD)
        await admin.goto(f"{live.url}/users/worker")
        await admin.get_by_role("button", name="Reset the password").click()
        new_password = await admin.get_by_label("New password of worker").input_value()
        assert len(new_password) >= 12
    finally:
        await admin_context.close()
    await page.reload()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, live, "worker", new_password)  # the new password works at once
    assert log.foreign() == []
    token = httpx.post(
        f"{live.url}/api/v1/auth/token",
        data={"username": "worker", "password": PASSWORD},
        timeout=10,
    )
    assert token.status_code == 401


async def test_keyboard_only_sign_in_with_visible_focus(
    context: BrowserContext, live: LiveService
) -> None:
    """Type, Tab and Enter only; the focus ring is drawn; the skip link leads to the page."""
    await add_user(live, "typist", Role.integration_user)
    page = await context.new_page()
    await page.goto(f"{live.url}/sign-in")
    user_name = page.get_by_label("User name")
    await expect(user_name).to_be_focused()  # autofocus: typing starts at once
    outline = await user_name.evaluate("element => getComputedStyle(element).outlineStyle")
    assert outline == "solid"
    await page.keyboard.type("typist")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
