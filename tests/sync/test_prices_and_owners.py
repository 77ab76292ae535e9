"""Customer price groups -> price lists, sales prices -> price list items, owners."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlmodel.ext.asyncio.session import AsyncSession

from app.catalog import run_mapping
from app.dataverse import DataverseClient
from app.db import SessionMaker
from app.models import erp
from app.models.integration import ConnectionSetup, Direction
from app.sync.sync_pass import RunOptions
from tests.fixtures.sandbox import RunningSandbox
from tests.sync import factories as f

FULL = RunOptions(is_full=True)
TO = Direction.to_crm


async def test_price_groups_and_sales_prices(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    await f.add(session, f.unit("PCS"), erp.CustomerPriceGroup(code="RETAIL"))
    await f.add(session, f.item("1000"))
    await f.add(
        session,
        erp.SalesPrice(item_no="1000", sales_type=erp.SalesType.customer_price_group,
                       sales_code="RETAIL", unit_price=Decimal("8.75")),
        erp.SalesPrice(item_no="1000", sales_type=erp.SalesType.all_customers,
                       unit_price=Decimal("9")),  # outside the table filter
    )  # fmt: skip
    await session.commit()
    for name in ("UNIT OF MEASURE", "ITEM-PRODUCT", "CUSTPRCGRP-PRICE"):
        await run_mapping(sessionmaker, crm, mapping_name=name, options=FULL)
    # Not "full": SALESPRC-PRODPRICE syncs uncoupled records by default.
    prices = await run_mapping(sessionmaker, crm, mapping_name="SALESPRC-PRODPRICE")
    assert prices.counters[TO].inserted == 1

    state = sandbox.state
    retail = next(p for p in state.rows("pricelevels") if p["name"] == "RETAIL")
    assert retail["_transactioncurrencyid_value"] == state.identity.base_currency_id
    product = state.rows("products")[0]
    in_retail = [i for i in state.rows("productpricelevels")
                 if i["_pricelevelid_value"] == retail["pricelevelid"]]  # fmt: skip
    assert len(in_retail) == 1
    assert in_retail[0]["_productid_value"] == product["productid"]
    assert in_retail[0]["amount"] == 8.75
    assert in_retail[0]["pricingmethodcode"] == 1
    assert len(state.rows("pricelevels")) == 2  # RETAIL + the default price list, once


async def test_owner_comes_from_the_coupled_salesperson(
    session: AsyncSession, sessionmaker: SessionMaker, sandbox: RunningSandbox,
    crm: DataverseClient, setup: ConnectionSetup,
) -> None:  # fmt: skip
    user_id = await crm.create(
        "systemusers", {"firstname": "Ann", "lastname": "Sales", "isdisabled": False,
                        "internalemailaddress": "ann@crm.example"},
    )  # fmt: skip
    # Users are maintained by people in the CRM, not by the integration user.
    await f.crm_user_edit(sandbox, "systemusers", user_id, mobilephone="555-0100")
    person = erp.Salesperson(code="AS", name="old name")
    await f.add(session, person)
    await f.add(session, f.coupling("salesperson", person.system_id, "systemuser", user_id))
    await f.add(session, erp.Customer(no="C1", name="Cycle shop", salesperson_code="AS"),
                erp.Customer(no="C2", name="No owner"))  # fmt: skip
    await session.commit()

    people = await run_mapping(sessionmaker, crm, mapping_name="SALESPEOPLE", options=FULL)
    assert people.counters[Direction.from_crm].modified == 1
    await session.refresh(person)
    assert (person.name, person.email, person.phone) == ("Ann Sales", "ann@crm.example", "555-0100")

    customers = await run_mapping(sessionmaker, crm, mapping_name="CUSTOMER", options=FULL)
    assert customers.counters[TO].inserted == 2
    accounts = {a["name"]: a for a in sandbox.state.rows("accounts")}
    assert accounts["Cycle shop"]["_ownerid_value"] == str(user_id)
    # Not null: no salesperson -> the owner is not sent, the CRM's default owner stays.
    assert accounts["No owner"]["_ownerid_value"] == sandbox.state.user_id
    assert uuid.UUID(accounts["Cycle shop"]["_transactioncurrencyid_value"])  # LCY
