"""Auto process sales quotes end to end: CRM quotes over the Web API, real workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, select

from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import JobKind
from app.sales.sales_quotes import JOB_NAME
from app.sandbox import SandboxConfig
from app.sandbox.config import DEFAULT_ALTERNATE_KEYS
from app.settings import Settings
from tests.fixtures.sandbox import RunningSandbox, start_sandbox
from tests.sales.conftest import run_job
from tests.sales.test_auto_create_orders import couplings, job_rows, lines_of, orders
from tests.sales.world import Line, World, activate_quote, crm_document, submit

QUOTES = JobKind.auto_process_sales_quotes


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """Dataverse has no alternate key on quotenumber: revisions share the number."""
    keys = {name: k for name, k in DEFAULT_ALTERNATE_KEYS.items() if name != "quotes"}
    with start_sandbox(SandboxConfig(alternate_keys=keys)) as running:
        yield running


async def quotes(sessionmaker: SessionMaker) -> list[erp.SalesHeader]:
    async with sessionmaker() as session:
        statement = (
            select(erp.SalesHeader)
            .where(erp.SalesHeader.document_type == erp.SalesDocumentType.quote)
            .order_by(col(erp.SalesHeader.your_reference), col(erp.SalesHeader.no))
        )
        return list(await session.exec(statement))


async def test_active_and_won_quotes_become_erp_quotes_once_and_revisions_replace_them(
    sessionmaker: SessionMaker, sandbox: RunningSandbox, crm: DataverseClient, world: World,
    tick_ctx: dict[str, Any], worker_settings: Settings,
) -> None:  # fmt: skip
    first = await crm_document(
        crm, "quote", number="QUO-1", account=world.account_c1,
        lines=[Line(2, 10.5, world.product_1000), Line(1, 40, None, description="Setup")],
        header={"revisionnumber": 0},
    )  # fmt: skip
    won = await crm_document(
        crm, "quote", number="QUO-2", account=world.account_c1,
        lines=[Line(3, 80, world.product_r1)],
    )  # fmt: skip
    await run_job(QUOTES, sessionmaker, tick_ctx, worker_settings)
    assert await quotes(sessionmaker) == []  # drafts are not processed
    await activate_quote(crm, first.crm_id)
    await activate_quote(crm, won.crm_id)
    await crm.set_state("quotes", won.crm_id, statecode=2, statuscode=4)  # Won

    await run_job(QUOTES, sessionmaker, tick_ctx, worker_settings)
    quote_1, quote_2 = await quotes(sessionmaker)
    assert [(q.your_reference, q.sell_to_customer_no) for q in (quote_1, quote_2)] == [
        ("QUO-1", "C1"), ("QUO-2", "C1"),
    ]  # fmt: skip
    assert [(x.no, x.quantity) for x in await lines_of(sessionmaker, quote_1)] == [
        ("1000", 2), ("WRITE-IN", 1),
    ]  # fmt: skip
    assert await couplings(sessionmaker, "sales_header") == {
        quote_1.system_id: first.crm_id, quote_2.system_id: won.crm_id,
    }  # fmt: skip
    await run_job(QUOTES, sessionmaker, tick_ctx, worker_settings)
    assert [q.no for q in await quotes(sessionmaker)] == [quote_1.no, quote_2.no]  # no new ones
    rerun = (await job_rows(sessionmaker, JOB_NAME))[-1]
    assert (rerun.inserted, rerun.unchanged, rerun.failed) == (0, 2, 0)

    # Revised in the CRM: the old revision closed as Revised, a new row with the same number.
    await crm.set_state("quotes", first.crm_id, statecode=3, statuscode=7)
    revised = await crm_document(
        crm, "quote", number="QUO-1", account=world.account_c1,
        lines=[Line(5, 10.5, world.product_1000)], header={"revisionnumber": 1},
    )  # fmt: skip
    await activate_quote(crm, revised.crm_id)
    await run_job(QUOTES, sessionmaker, tick_ctx, worker_settings)
    current = [q for q in await quotes(sessionmaker) if q.your_reference == "QUO-1"]
    assert len(current) == 1 and current[0].system_id != quote_1.system_id  # a new ERP quote
    assert [(x.no, x.quantity) for x in await lines_of(sessionmaker, current[0])] == [("1000", 5)]
    assert (await couplings(sessionmaker, "sales_header"))[current[0].system_id] == revised.crm_id

    # An order made from the won quote remembers the ERP quote (BC's "Quote No.").
    order = await crm_document(
        crm, "salesorder", number="ORD-20", account=world.account_c1,
        lines=[Line(3, 80, world.product_r1)],
        header={"quoteid@odata.bind": f"/quotes({won.crm_id})"},
    )  # fmt: skip
    await submit(crm, order.crm_id)
    await run_job(JobKind.auto_create_sales_orders, sessionmaker, tick_ctx, worker_settings)
    (made,) = await orders(sessionmaker)
    assert (made.your_reference, made.quote_no) == ("ORD-20", quote_2.no)
