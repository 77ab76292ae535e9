"""The administrator's journey in a real browser: sign in, the assisted setup against the
sandbox, the first full synchronization to its end, a failed record's error, a skipped
record restored, an item coupled by hand and synchronized, an access key issued in the
console and used by a plain HTTP client. Every page is screenshotted at 1280 and 390 px."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.db import create_engine, create_sessionmaker, session_scope
from app.demo.sample_company import load_sample_company
from app.erp import tables
from app.erp.resources import upsert_rows
from app.models.security import Role
from tests.browser.conftest import add_user, sign_in
from tests.fixtures.browser import PHONE, new_context, screenshot, watch
from tests.fixtures.live_service import LiveService

FIRST_SYNC_SECONDS = 300


async def _load_sample_company(live: LiveService) -> None:
    engine = create_engine(live.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            await load_sample_company(session)
    finally:
        await engine.dispose()


async def _assisted_setup(page: Page, live: LiveService) -> None:
    await (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="Assisted setup")
        .click()
    )
    await page.get_by_role("button", name="Start the assisted setup").click()
    url_form = page.locator("form[action='/setup/steps/crm_url']")
    await url_form.get_by_label("CRM URL").fill(live.sandbox.base_url)
    await url_form.get_by_role("button", name="Save and continue").click()
    await expect(
        page.get_by_role("listitem").filter(has_text="Enter the Dynamics 365 Sales URL")
    ).to_contain_text("done")
    credentials = page.locator("form[action='/setup/steps/credentials']")
    await credentials.get_by_label("Token URL (instead of the tenant)").fill(live.token_url)
    await credentials.get_by_label("Client id").fill(live.sandbox_config.client_id)
    await credentials.get_by_label("Client secret").fill(live.sandbox_config.client_secret)
    await credentials.get_by_role("button", name="Save and continue").click()
    await expect(
        page.get_by_role("listitem").filter(has_text="Sign-in: authentication type")
    ).to_contain_text("done")
    options = page.locator("form[action='/setup/steps/options']")
    await options.get_by_label("Publish item availability to the CRM").check()
    await options.get_by_label("OData user").select_option("crm")
    await options.get_by_label("Issue a new access key for this user").check()
    await options.get_by_role("button", name="Save and continue").click()
    await expect(page.get_by_role("listitem").filter(has_text="Advanced settings")).to_contain_text(
        "done"
    )
    await screenshot(page, "setup-steps")
    await page.get_by_role("button", name="Finish").click()
    await expect(page.get_by_role("heading", name="The connection is set up")).to_be_visible(
        timeout=60_000
    )


async def _first_full_sync(page: Page) -> None:
    """Start it; the recurring runs the enabling started may refuse it a moment (409)."""
    for _attempt in range(30):
        await page.get_by_role("button", name="Start the first full synchronization").click()
        started = page.locator("#first-sync-progress")
        refused = page.locator("#messages .message.error")
        await expect(started.or_(refused)).to_be_visible(timeout=20_000)
        if await started.count():
            break
        await page.wait_for_timeout(2000)
        await page.reload()
    await expect(page.locator("#first-sync-progress progress").first).to_be_visible()
    await screenshot(page, "setup-first-sync-running")
    await expect(page.locator("#first-sync-done")).to_be_visible(timeout=FIRST_SYNC_SECONDS * 1000)
    await screenshot(page, "setup-first-sync-done")


async def _failed_record(page: Page) -> None:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Sync log").click()
    await page.get_by_label("Mapping").select_option("CUSTOMER")
    await page.get_by_label("Status").select_option("with_errors")
    await page.get_by_role("button", name="Show").click()
    await expect(page).to_have_url(re.compile(r"status=with_errors"))
    await screenshot(page, "sync-log-filtered")
    await page.locator("#runs a", has_text="details").first.click()
    await expect(page.get_by_role("heading", name="Failed records")).to_be_visible()
    first = page.locator("tbody tr").first
    await expect(first).to_contain_text("customer C")
    await expect(first).to_contain_text("is not coupled to a Dynamics 365 Sales record")
    await expect(first).to_contain_text("Skipped: it failed twice the same way")
    await screenshot(page, "sync-run-errors")


async def _skipped_record_restored(page: Page, live: LiveService) -> None:
    """The customers failed twice the same way (recurring run, then the full sync): skipped."""
    await page.goto(f"{live.url}/couplings?mapping=CUSTOMER&state=skipped")
    skipped = page.locator("#records tbody tr")
    before = await skipped.count()
    assert before >= 1
    label = (await skipped.first.locator("td").first.inner_text()).strip()
    await skipped.first.get_by_role("link", name=f"Open {label}").click()
    await expect(page.get_by_role("heading", name=label)).to_contain_text("skipped")
    await page.get_by_role("button", name="Restore").click()
    await expect(page.locator("#messages")).to_contain_text("Restored 1 skipped record")
    await page.reload()
    await expect(page.get_by_role("heading", name=label)).not_to_contain_text("skipped")
    await page.goto(f"{live.url}/couplings?mapping=CUSTOMER&state=skipped")
    await expect(skipped).to_have_count(before - 1)
    await page.goto(f"{live.url}/couplings")
    await screenshot(page, "couplings-attention")


async def _couple_by_hand(page: Page, live: LiveService) -> None:
    """A new ERP item and a CRM product made apart: coupled in the console, then synced."""
    engine = create_engine(live.database_url)
    try:
        async with session_scope(create_sessionmaker(engine)) as session:
            item = {"no": "9000", "description": "Gift card", "base_unit_of_measure": "PCS"}
            await upsert_rows(session, tables.ITEM, [item])
    finally:
        await engine.dispose()
    async with _crm(live) as crm:
        created = await crm.post(
            "products",
            json={"name": "Gift card (CRM)", "productnumber": "GC-CRM", "producttypecode": 1},
            headers={"Prefer": "return=representation"},
        )
        assert created.status_code in (200, 201), created.text
        product_id = uuid.UUID(created.json()["productid"])
        published = await crm.patch(f"products({product_id})", json={"statecode": 0})
        assert published.status_code in (200, 204), published.text  # new products are drafts
    await page.goto(f"{live.url}/couplings?mapping=ITEM-PRODUCT&q=9000")
    await page.get_by_role("link", name="Open item 9000").click()
    await expect(page.get_by_role("heading", name="item 9000")).to_contain_text("uncoupled")
    await page.get_by_label("Name or id in the CRM").fill("Gift card (CRM)")
    await page.get_by_role("button", name="Search the CRM").click()
    await expect(page.get_by_role("cell", name=str(product_id))).to_be_visible()
    await screenshot(page, "coupling-search")
    await page.get_by_role("button", name="Couple").click()
    await expect(page.locator("#messages")).to_contain_text(f"Coupled to CRM product {product_id}")
    await page.reload()
    await page.get_by_role("button", name="Synchronize now").click()
    await expect(page.locator("#messages")).to_contain_text("Synchronized. item 9000")
    await page.reload()
    await expect(page.get_by_role("heading", name="item 9000")).to_contain_text("synchronized")
    await screenshot(page, "coupling-record")
    async with _crm(live) as crm:
        product = (await crm.get(f"products({product_id})")).json()
    assert (product["productnumber"], product["name"]) == ("9000", "Gift card")


@asynccontextmanager
async def _crm(live: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the sandbox's Web API, signed in as the app registration."""
    form = {
        "grant_type": "client_credentials", "client_id": live.sandbox_config.client_id,
        "client_secret": live.sandbox_config.client_secret,
        "scope": f"{live.sandbox.base_url}/.default",
    }  # fmt: skip
    token = httpx.post(live.token_url, data=form, timeout=10).json()["access_token"]
    async with httpx.AsyncClient(
        base_url=f"{live.sandbox.base_url}/api/data/v9.2/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ) as http:
        yield http


async def _issue_key_and_read_odata(page: Page, live: LiveService) -> None:
    await page.goto(f"{live.url}/users/crm")
    await page.get_by_role("button", name="Issue a key").click()
    shown = page.get_by_label("New access key of crm (works beside earlier keys)")
    await expect(shown).to_be_visible()
    key = await shown.input_value()
    assert key.startswith("sbk_")
    await screenshot(page, "user-key-issued")
    answer = httpx.get(
        f"{live.url}/odata/v4/ItemAvailability('1000')", auth=("crm", key), timeout=10
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["ItemNo"] == "1000"


PAGES = (
    ("overview", "/"), ("setup", "/setup"), ("connection", "/connection"),
    ("mappings", "/mappings"), ("mapping", "/mappings/CUSTOMER"),
    ("couplings", "/couplings?mapping=CUSTOMER"), ("sync-log", "/sync-log"),
    ("jobs", "/jobs"), ("users", "/users"), ("availability", "/availability"),
    ("availability-item", "/availability/1000"), ("sales", "/sales"),
)  # fmt: skip


async def _every_page(browser: Browser, page: Page, live: LiveService) -> None:
    """Every page at 1280 and 390 px wide, no request off the machine, no failed request."""
    phone = await new_context(browser, viewport=PHONE)
    try:
        await phone.add_cookies(await page.context.cookies())
        small = await phone.new_page()
        for wide, size in ((page, "1280"), (small, "390")):
            log = watch(wide)
            for name, path in PAGES:
                answer = await wide.goto(f"{live.url}{path}")
                assert answer is not None and answer.status == 200, (path, answer)
                await expect(wide.locator("main h1")).to_be_visible()
                await screenshot(wide, f"{name}-{size}")
                # Usable at that width: only a table region may scroll sideways, not the page.
                overflow = await wide.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (path, size, overflow)
            assert log.foreign() == []
    finally:
        await phone.close()


async def test_admin_journey(browser: Browser, context: BrowserContext, live: LiveService) -> None:
    await _load_sample_company(live)
    await add_user(live, "crm", Role.product_availability, password=None)
    page = await context.new_page()
    log = watch(page)
    await sign_in(page, live, "admin", live.admin_password)
    await screenshot(page, "overview-empty")
    await _assisted_setup(page, live)
    await _first_full_sync(page)
    await _failed_record(page)
    await _skipped_record_restored(page, live)
    await _couple_by_hand(page, live)
    await _issue_key_and_read_odata(page, live)
    await _every_page(browser, page, live)
    assert log.foreign() == []
