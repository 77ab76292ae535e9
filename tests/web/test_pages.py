"""Every console page and action over HTTP, against the in-process sandbox CRM, on both
databases: the same outcomes the REST API gives, rendered as HTML."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel.ext.asyncio.session import AsyncSession

from app.demo.sample_company import load_sample_company
from app.models.security import Role
from app.odata import auth as odata_auth
from tests.fixtures.certificates import make_certificate
from tests.fixtures.sandbox import RunningSandbox
from tests.web.conftest import Console, ConsoleFactory

pytestmark = pytest.mark.usefixtures("sessionmaker")


async def _connect(console: Console, sandbox: RunningSandbox) -> None:
    form = {
        "server_address": sandbox.base_url, "authentication_type": "oauth_client_secret",
        "token_url": sandbox.token_url, "client_id": sandbox.config.client_id,
        "client_secret": sandbox.config.client_secret, "dataverse_connection_enabled": "true",
    }  # fmt: skip
    saved = await console.post("/connection", form)
    assert saved.status_code == 204, saved.text
    enabled = await console.post("/connection/enable")
    assert enabled.status_code == 204, enabled.text


async def test_a_certificate_is_pasted_on_the_connection_page_and_shown_by_thumbprint(
    console_for: ConsoleFactory, sandbox: RunningSandbox
) -> None:
    console = await console_for("admin")
    certificate, expired = make_certificate("console"), make_certificate("old", expired=True)
    form = {
        "server_address": sandbox.base_url, "authentication_type": "oauth_certificate",
        "token_url": sandbox.token_url, "client_id": sandbox.config.client_id,
        "client_certificate": certificate.bundle("pem pass"),
        "client_certificate_password": "pem pass",
    }  # fmt: skip
    saved = await console.post("/connection", form)
    assert saved.status_code == 204, saved.text
    page = (await console.http.get("/connection")).text
    assert certificate.thumbprint in page and "CN=console" in page
    assert "PRIVATE KEY" not in page and "pem pass" not in page

    kept = await console.post("/connection", {**form, "client_certificate": "",
                                              "client_certificate_password": ""})  # fmt: skip
    assert kept.status_code == 204, kept.text  # blank keeps the stored certificate
    assert certificate.thumbprint in (await console.http.get("/connection")).text
    refused = await console.post("/connection", {**form, "client_certificate": expired.bundle(),
                                                 "client_certificate_password": ""})  # fmt: skip
    assert refused.status_code == 400 and "expired" in refused.text, refused.text
    assert certificate.thumbprint in (await console.http.get("/connection")).text
    cleared = await console.post("/connection", {
        "authentication_type": "oauth_client_secret", "clear_client_certificate": "true",
        "client_secret": sandbox.config.client_secret,
    })  # fmt: skip
    assert cleared.status_code == 204, cleared.text
    assert certificate.thumbprint not in (await console.http.get("/connection")).text


async def test_connection_test_steps_and_the_crm_api_budget(
    console_for: ConsoleFactory, sandbox: RunningSandbox, app: FastAPI
) -> None:
    console = await console_for("admin")
    await _connect(console, sandbox)
    page = await console.http.get("/connection")
    assert "set: leave blank to keep" in page.text  # the secret is set, never echoed
    assert sandbox.config.client_secret not in page.text
    tested = await console.post("/connection/test")
    assert tested.status_code == 200
    assert "The connection works." in tested.text
    assert "whoami" in tested.text
    overview = await console.http.get("/")
    assert "passed" in overview.text
    budget = await console.http.get("/budget")
    label = f"{sandbox.base_url} (client {sandbox.config.client_id})"
    assert label in budget.text
    requests = re.search(r"Requests, last 5 minutes:</strong> (\d+) of 6,000", budget.text)
    assert requests and int(requests.group(1)) >= 1
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        metrics = (await http.get("/metrics")).text
    ours = f'salesbridge_crm_requests{{connection="{label}"}} '
    line = next(ln for ln in metrics.splitlines() if ln.startswith(ours))
    assert float(line.rsplit(" ", 1)[1]) >= 1


async def test_mapping_page_validates_filters_live_and_saves_field_mappings(
    console_for: ConsoleFactory, sandbox: RunningSandbox
) -> None:
    console = await console_for("admin")
    await _connect(console, sandbox)
    page = await console.http.get("/mappings/CUSTOMER")
    assert page.status_code == 200
    good = await console.http.get(
        "/mappings/CUSTOMER/check-filter",
        params={"field": "table_filter", "table_filter": "no ne ''"},
    )
    assert "The filter is valid." in good.text
    bad = await console.http.get(
        "/mappings/CUSTOMER/check-filter",
        params={"field": "table_filter", "table_filter": "nope eq 1"},
    )
    assert "field-message error" in bad.text and "nope" in bad.text
    crm = await console.http.get(
        "/mappings/CUSTOMER/check-filter",
        params={"field": "integration_table_filter", "integration_table_filter": "statecode eq 0"},
    )
    assert "The filter is valid." in crm.text
    # the row of the customer's name: a field on both sides, so no constant is needed
    field_id = re.search(r'form="fm-([0-9a-f-]{36})"[^>]*aria-label="Constant of name"', page.text)
    assert field_id
    saved = await console.post(
        f"/mappings/CUSTOMER/fields/{field_id.group(1)}",
        {
            "direction": "to_crm",
            "constant_value": "",
            "validate_field": "false",
            "status": "enabled",
        },
    )
    assert saved.status_code == 200, saved.text
    assert "Saved" in saved.text
    refused = await console.post("/mappings/CUSTOMER", {"table_filter": "nope eq 1"})
    assert refused.status_code == 400
    assert refused.headers["hx-retarget"] == "#messages"


async def test_job_queue_actions(console_for: ConsoleFactory, sandbox: RunningSandbox) -> None:
    console = await console_for("admin")
    await _connect(console, sandbox)
    page = await console.http.get("/jobs")
    entry_id = re.search(r'id="job-(\d+)"', page.text)
    assert entry_id
    held = await console.post(f"/jobs/{entry_id.group(1)}/hold")
    assert held.status_code == 200, held.text
    assert "on hold" in held.text
    edited = await console.post(
        f"/jobs/{entry_id.group(1)}",
        {"minutes_between_runs": "45", "inactivity_timeout_minutes": "10"},
    )
    assert 'value="45"' in edited.text and 'value="10"' in edited.text
    wrong = await console.post(f"/jobs/{entry_id.group(1)}", {"minutes_between_runs": "0"})
    assert wrong.status_code == 422
    assert "minutes_between_runs" in wrong.text
    ready = await console.post(f"/jobs/{entry_id.group(1)}/ready")
    assert "ready" in ready.text


async def test_users_and_keys(console_for: ConsoleFactory, app: FastAPI) -> None:
    console = await console_for("admin")
    created = await console.post("/users", {"user_name": "crm", "roles": "product-availability"})
    assert created.status_code == 204, created.text
    issued = await console.post("/users/crm/keys", {"expires_in_days": "30"})
    key = re.search(r'value="(sbk_[^"]+)"', issued.text)
    assert key, issued.text
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        odata = await http.get("/odata/v4/ItemAvailability", auth=("crm", key.group(1)))
        assert odata.status_code == 200
        rotated = await console.post("/users/crm/keys/rotate")
        assert "earlier keys are revoked" in rotated.text
        odata_auth.clear_cache()  # the OData service trusts a checked key for 5 s
        assert (await http.get("/odata/v4/", auth=("crm", key.group(1)))).status_code == 401
    revoked = await console.post("/users/crm/keys/revoke")
    assert "Revoked 1 key(s)" in revoked.text
    user = await console.http.get("/users/crm")
    assert user.text.count(">revoked<") == 2
    last_admin = await console.post("/users/admin/state", {"state": "disabled"})
    assert last_admin.status_code == 409
    assert "last enabled integration-admin" in last_admin.text


async def test_item_availability_as_the_crm_reads_it(
    console_for: ConsoleFactory, session: AsyncSession
) -> None:
    await load_sample_company(session)
    await session.commit()
    console = await console_for("stock", Role.product_availability)
    found = await console.http.get("/availability", params={"q": "wheel"})
    assert found.status_code == 200
    assert "Front Wheel" in found.text and "Back Wheel" in found.text
    assert "Bicycle" not in found.text
    item = await console.http.get("/availability/1100")
    assert "ItemAvailability('1100')" in item.text
    assert re.search(r"<dt>Inventory</dt><dd>80(\.0*)?</dd>", item.text), item.text  # opening stock
    assert (await console.http.get("/availability/NOPE")).status_code == 404


async def test_couplings_browse_and_match_preview(
    console_for: ConsoleFactory, sandbox: RunningSandbox, session: AsyncSession
) -> None:
    await load_sample_company(session)
    await session.commit()
    console = await console_for("admin")
    await _connect(console, sandbox)
    page = await console.http.get("/couplings", params={"mapping": "ITEM-PRODUCT", "q": "hub"})
    assert "item 1150" in page.text and "item 1250" in page.text and "item 1000" not in page.text
    assert "uncoupled" in page.text
    preview = await console.post("/couplings/match-preview", {"mapping_name": "UNIT OF MEASURE"})
    assert preview.status_code == 200, preview.text
    assert "would be coupled" in preview.text
    second = await console.http.get("/couplings", params={"mapping": "ITEM-PRODUCT"})
    assert second.status_code == 200


async def test_sync_log_filters_and_paging(
    console_for: ConsoleFactory, session: AsyncSession
) -> None:
    from datetime import timedelta

    from app.clock import utc_now
    from app.models.integration import Direction, IntegrationSynchJob

    now = utc_now()
    for index in range(60):
        session.add(IntegrationSynchJob(
            mapping_name="CUSTOMER" if index % 2 else "ITEM-PRODUCT", direction=Direction.to_crm,
            started_at=now - timedelta(minutes=index), finished_at=now - timedelta(minutes=index),
            inserted=index, failed=1 if index % 3 == 0 else 0,
        ))  # fmt: skip
    await session.commit()
    console = await console_for("reader", Role.integration_user)
    first = await console.http.get("/sync-log")
    assert first.text.count("details</a>") == 50
    older = re.search(r'href="/sync-log\?([^"]*after=\d+[^"]*)">Older runs', first.text)
    assert older
    second = await console.http.get("/sync-log?" + older.group(1).replace("&amp;", "&"))
    assert second.text.count("details</a>") == 10
    errors_only = await console.http.get(
        "/sync-log", params={"status": "with_errors", "mapping": "CUSTOMER"}
    )
    assert errors_only.text.count("details</a>") == 10  # odd indexes divisible by 3
    bad = await console.http.get("/sync-log", params={"status": "exploded"})
    assert bad.status_code == 422
