"""Issue 15: ``/docs`` (Swagger UI) renders with no request leaving 127.0.0.1, and its
Authorize dialog signs in with a user name and password (OAuth2 password flow against
``/api/v1/auth/token``). Written against that contract; it passes once /docs serves its
assets from the installed packages."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect

from app.models.security import Role
from tests.browser.conftest import PASSWORD, add_user
from tests.fixtures.browser import screenshot, watch
from tests.fixtures.live_service import LiveService


async def test_docs_render_offline_and_authorize_with_a_password(
    context: BrowserContext, live: LiveService
) -> None:
    await add_user(live, "apiuser", Role.integration_admin)
    page = await context.new_page()
    log = watch(page)
    await page.goto(f"{live.url}/docs")
    await expect(page.locator(".swagger-ui .information-container")).to_be_visible()
    await expect(page.get_by_text("/api/v1/auth/token").first).to_be_visible()
    await page.get_by_role("button", name="Authorize").first.click()
    dialog = page.locator(".dialog-ux")
    await dialog.locator("#oauth_username").fill("apiuser")
    await dialog.locator("#oauth_password").fill(PASSWORD)
    # Swagger UI names its buttons for screen readers ("Apply given OAuth2 credentials").
    await dialog.locator("button.modal-btn.authorize").click()
    await expect(dialog.locator("button.modal-btn", has_text="Logout")).to_be_visible()
    await expect(dialog.get_by_text("Authorized", exact=True)).to_be_visible()
    await screenshot(page, "api-docs-authorized")
    await dialog.locator("button.modal-btn", has_text="Close").click()
    assert log.foreign() == [], log.foreign()
