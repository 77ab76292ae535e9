"""The seed's CRM-side rules that need the CRM or the setup row.

- the integration user (whose writes still decide for couplings with no fingerprint yet)
  and the base (LCY) currency are taken from the setup, or found in the CRM once and
  stored there;
- the default price list "<company> Default Price List" in LCY is created once, its id
  kept in the setup; every product gets a price list item in it, whose id is derived from
  the product's id (uuid5), so keeping it current is an idempotent upsert;
- a product is created as Draft by Dataverse, so it is made active right after (retired
  when its ERP row is blocked), in the same change set;
- a product's default unit is the one unit of its unit group (uomschedule), found once
  per run and cached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import BatchOperation, DataverseClient, create_op, update_op, upsert_op
from app.dataverse.addressing import bind
from app.dataverse.errors import DataverseError, DuplicateRecordError
from app.models.integration import ConnectionSetup
from app.sync import transfer
from app.sync.errors import FatalSyncError, from_dataverse

PRICE_LIST_NAME = "{company} Default Price List"
PRODUCT_TABLES = ("item", "resource")
UNITS_PER_QUERY = 50
_PRICE_ITEM_NAMESPACE = uuid.UUID("6b1f3f6e-3f6a-4d53-9d0e-5a3c1f2e7b10")


@dataclass
class CrmContext:
    """What every record of a run may need from the CRM side, looked up once."""

    integration_user_id: uuid.UUID
    base_currency_id: uuid.UUID
    default_price_list_id: uuid.UUID | None = None
    base_units: dict[uuid.UUID, uuid.UUID] = field(default_factory=dict)  # schedule -> uom


async def _first_id(
    crm: DataverseClient, entity_set: str, pk: str, **query: Any
) -> uuid.UUID | None:
    async for record in crm.query(entity_set, select=[pk], top=1, **query):
        return uuid.UUID(str(record[pk]))
    return None


async def _base_currency(crm: DataverseClient, setup: ConnectionSetup) -> uuid.UUID:
    if setup.base_currency_code:
        code = setup.base_currency_code.replace("'", "''")
        found = await _first_id(
            crm, "transactioncurrencies", "transactioncurrencyid",
            filter=f"isocurrencycode eq '{code}'",
        )  # fmt: skip
    else:  # the org's base currency is the first one it was created with
        # createdon has whole seconds: versionnumber (always increasing) breaks a tie with
        # a currency added in the same second.
        found = await _first_id(
            crm, "transactioncurrencies", "transactioncurrencyid",
            orderby=["createdon asc", "versionnumber asc"],
        )  # fmt: skip
    if found is None:
        msg = (
            f"The CRM has no currency {setup.base_currency_code or '(base)'}; set the base "
            "currency code in the connection setup."
        )
        raise FatalSyncError(msg)
    return found


async def prepare(
    session: AsyncSession,
    crm: DataverseClient,
    setup: ConnectionSetup,
    *,
    company_name: str,
    needs_price_list: bool,
) -> CrmContext:
    """Resolve (and remember in the setup row) the integration user, LCY and price list."""
    try:
        if setup.integration_user_id is None:
            setup.integration_user_id = (await crm.whoami()).user_id
        if setup.base_currency_id is None:
            setup.base_currency_id = await _base_currency(crm, setup)
        context = CrmContext(setup.integration_user_id, setup.base_currency_id)
        if needs_price_list:
            context.default_price_list_id = await ensure_default_price_list(
                crm, setup, company_name=company_name, currency_id=context.base_currency_id
            )
    except DataverseError as exc:
        raise from_dataverse(exc, action="prepare the synchronization") from exc
    await session.flush()
    return context


async def ensure_default_price_list(
    crm: DataverseClient, setup: ConnectionSetup, *, company_name: str, currency_id: uuid.UUID
) -> uuid.UUID:
    """The default price list: the stored one, else one of that name, else a new one."""
    name = PRICE_LIST_NAME.format(company=company_name)
    if setup.default_price_list_id is not None:
        pk = "pricelevelid"
        if await _first_id(crm, "pricelevels", pk, filter=f"{pk} eq {setup.default_price_list_id}"):
            return setup.default_price_list_id
    quoted = name.replace("'", "''")
    found = await _first_id(crm, "pricelevels", "pricelevelid", filter=f"name eq '{quoted}'")
    if found is None:
        body = {
            "name": name,
            "transactioncurrencyid@odata.bind": bind("transactioncurrencies", currency_id),
        }
        try:
            found = await crm.create("pricelevels", body)
        except DuplicateRecordError:
            # Another mapping's run (on another worker) created it a moment ago.
            found = await _first_id(
                crm, "pricelevels", "pricelevelid", filter=f"name eq '{quoted}'"
            )
            if found is None:
                raise
    setup.default_price_list_id = found
    return found


async def load_base_units(
    crm: DataverseClient, context: CrmContext, schedules: Iterable[uuid.UUID]
) -> None:
    """Find the unit of each unit group not cached yet (a group holds exactly one unit)."""
    missing = sorted({s for s in schedules if s not in context.base_units}, key=str)
    for start in range(0, len(missing), UNITS_PER_QUERY):
        chunk = missing[start : start + UNITS_PER_QUERY]
        text = " or ".join(f"_uomscheduleid_value eq {schedule}" for schedule in chunk)
        try:
            async for unit in crm.query(
                "uoms", select=["uomid", "_uomscheduleid_value"], filter=text
            ):
                context.base_units[uuid.UUID(unit["_uomscheduleid_value"])] = uuid.UUID(
                    unit["uomid"]
                )
        except DataverseError as exc:
            raise from_dataverse(exc, action="read the units of the unit groups") from exc


def price_list_item_id(product_id: uuid.UUID, price_list_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_PRICE_ITEM_NAMESPACE, f"{price_list_id}:{product_id}")


def product_insert_values(values: dict[str, Any], context: CrmContext) -> dict[str, Any]:
    """Lookups every new product carries: LCY, the default price list, its unit."""
    shaped = dict(values)
    shaped["transactioncurrencyid"] = context.base_currency_id
    if context.default_price_list_id is not None:
        shaped["pricelevelid"] = context.default_price_list_id
    schedule = values.get("defaultuomscheduleid")
    if isinstance(schedule, uuid.UUID) and schedule in context.base_units:
        shaped["defaultuomid"] = context.base_units[schedule]
    return shaped


def product_follow_ups(
    product_id: uuid.UUID,
    values: dict[str, Any],
    context: CrmContext,
    *,
    is_insert: bool,
    is_blocked: bool,
    current_state: int | None,
) -> list[BatchOperation]:
    """After writing a product: its state (active / retired) and its price list item."""
    ops: list[BatchOperation] = []
    state = transfer.product_state(is_blocked=is_blocked)
    if is_insert or current_state != int(state):
        ops.append(update_op("products", product_id, transfer.state_body(state)))
    price_list = context.default_price_list_id
    if price_list is not None and (is_insert or "price" in values):
        body: dict[str, Any] = {
            "pricelevelid@odata.bind": bind("pricelevels", price_list),
            "productid@odata.bind": bind("products", product_id),
            "pricingmethodcode": 1,
            "amount": transfer.to_json(values.get("price") or 0),
            "transactioncurrencyid@odata.bind": bind(
                "transactioncurrencies", context.base_currency_id
            ),
        }
        unit = values.get("defaultuomid")
        if isinstance(unit, uuid.UUID):
            body["uomid@odata.bind"] = bind("uoms", unit)
        item_id = price_list_item_id(product_id, price_list)
        ops.append(
            create_op("productpricelevels", body, id=item_id)
            if is_insert
            else upsert_op("productpricelevels", item_id, body)
        )
    return ops


def price_list_insert_values(values: dict[str, Any], context: CrmContext) -> dict[str, Any]:
    """A price list from a customer price group is in LCY."""
    return {**values, "transactioncurrencyid": context.base_currency_id}


ACCOUNT_TYPE_CUSTOMER = 3  # account.customertypecode "Customer"


def account_insert_values(values: dict[str, Any]) -> dict[str, Any]:
    """A new account from a customer is a Customer (BC's CRM template BCICUSTOME).

    The CUSTOMER mapping reads only ``customertypecode eq 3`` back: without it, a CRM
    change to an account the sync created would never reach the ERP.
    """
    return {"customertypecode": ACCOUNT_TYPE_CUSTOMER, **values}
