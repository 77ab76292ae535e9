"""Real-browser tests: headless Chromium (tests/fixtures/browser.py) against real
``salesbridge serve`` and ``salesbridge sandbox`` processes (tests/fixtures/live_service.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.auth import users
from app.db import create_engine, create_sessionmaker, session_scope
from app.models.security import Role
from tests.fixtures.browser import DESKTOP, browser, new_context
from tests.fixtures.live_service import LiveService, live_service

__all__ = ["browser"]
PASSWORD = "a browser test password"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_service(tmp_path_factory.mktemp("live")) as service:
        yield service


async def add_user(
    live: LiveService, name: str, *roles: Role, password: str | None = PASSWORD
) -> None:
    """Arrange a user in the service's own database (as `salesbridge user create` would)."""
    engine = create_engine(live.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await users.create_user(session, user_name=name, roles=list(roles), password=password)
    finally:
        await engine.dispose()


async def sign_in(page: Page, live: LiveService, user_name: str, password: str) -> None:
    await page.goto(f"{live.url}/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("User name").fill(user_name)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    opened = await new_context(browser, viewport=DESKTOP)
    yield opened
    await opened.close()
