"""A small company on both sides: ERP rows, CRM rows made over the Web API, couplings.

Coupled: customer C1 <-> account "Cycle shop", units PCS and BOX <-> unit groups, item 1000
and resource R1 <-> products. Not coupled: customer C2 / account "Bike corner" and item
1001 / product P-1001 (for the failure cases).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.dataverse import DataverseClient
from app.models import erp
from tests.sync import factories as f


@dataclass
class World:
    account_c1: uuid.UUID
    account_c2: uuid.UUID
    product_1000: uuid.UUID
    product_r1: uuid.UUID
    product_1001: uuid.UUID
    unit_pcs: uuid.UUID
    unit_box: uuid.UUID
    c2_system_id: uuid.UUID


@dataclass(frozen=True)
class Line:
    quantity: float
    price: float
    product: uuid.UUID | None = None  # None = a write-in product
    description: str = ""
    manual_discount: float = 0
    volume_discount: float = 0
    unit: uuid.UUID | None = None


@dataclass
class Document:
    crm_id: uuid.UUID
    line_ids: list[uuid.UUID] = field(default_factory=list)
    note_ids: list[uuid.UUID] = field(default_factory=list)


async def _product(
    crm: DataverseClient, number: str, type_code: int, schedule: uuid.UUID
) -> uuid.UUID:
    product_id = await crm.create("products", {
        "name": f"Product {number}", "productnumber": number, "producttypecode": type_code,
        "defaultuomscheduleid@odata.bind": f"/uomschedules({schedule})",
    })  # fmt: skip
    await crm.set_state("products", product_id, statecode=0, statuscode=1)  # published
    return product_id


async def _unit_group(crm: DataverseClient, name: str) -> tuple[uuid.UUID, uuid.UUID]:
    schedule = await crm.create("uomschedules", {"name": name, "baseuomname": name})
    units = [u async for u in crm.query(
        "uoms", select=["uomid"], filter=f"_uomscheduleid_value eq {schedule}"
    )]  # fmt: skip
    return schedule, uuid.UUID(units[0]["uomid"])


async def build_world(session: AsyncSession, crm: DataverseClient, *, write_in: str) -> World:
    pcs, box, hour = f.unit("PCS"), f.unit("BOX"), f.unit("HOUR")
    await f.add(session, pcs, box, hour)
    item, other_item = f.item("1000"), f.item("1001")
    resource = f.resource("R1")
    writein = f.item(write_in, description="Write-in product", unit_price=Decimal(0))
    c1 = erp.Customer(no="C1", name="Cycle shop", city="Lund")
    c2 = erp.Customer(no="C2", name="Bike corner")
    await f.add(session, item, other_item, resource, writein, c1, c2)
    pcs_group, pcs_unit = await _unit_group(crm, "PCS")
    box_group, box_unit = await _unit_group(crm, "BOX")
    hour_group, _ = await _unit_group(crm, "HOUR")
    world = World(
        account_c1=await crm.create("accounts", {"name": "Cycle shop"}),
        account_c2=await crm.create("accounts", {"name": "Bike corner"}),
        product_1000=await _product(crm, "1000", 1, pcs_group),
        product_r1=await _product(crm, "R1", 3, hour_group),
        product_1001=await _product(crm, "1001", 1, pcs_group),
        unit_pcs=pcs_unit, unit_box=box_unit, c2_system_id=c2.system_id,
    )  # fmt: skip
    await f.add(
        session,
        f.coupling("customer", c1.system_id, "account", world.account_c1),
        f.coupling("unit_of_measure", pcs.system_id, "uomschedule", pcs_group),
        f.coupling("unit_of_measure", box.system_id, "uomschedule", box_group),
        f.coupling("unit_of_measure", hour.system_id, "uomschedule", hour_group),
        f.coupling("item", item.system_id, "product", world.product_1000),
        f.coupling("resource", resource.system_id, "product", world.product_r1),
    )
    await session.commit()
    return world


def _line_body(document: str, document_id: uuid.UUID, line: Line, sequence: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        f"{document}id@odata.bind": f"/{document}s({document_id})",
        "quantity": line.quantity, "priceperunit": line.price, "ispriceoverridden": True,
        "manualdiscountamount": line.manual_discount,
        "volumediscountamount": line.volume_discount, "sequencenumber": sequence,
    }  # fmt: skip
    if line.product is None:
        body.update(isproductoverridden=True, productdescription=line.description)
    else:
        body["productid@odata.bind"] = f"/products({line.product})"
    if line.unit is not None:
        body["uomid@odata.bind"] = f"/uoms({line.unit})"
    return body


async def crm_document(
    crm: DataverseClient,
    document: str,  # "salesorder" or "quote"
    *,
    number: str,
    account: uuid.UUID,
    lines: Sequence[Line],
    notes: Sequence[tuple[str, str]] = (),
    header: dict[str, Any] | None = None,
) -> Document:
    """A CRM order or quote as a salesperson makes it: header, lines (out of order), notes."""
    number_field = "ordernumber" if document == "salesorder" else "quotenumber"
    body = {
        "name": f"Web order {number}", number_field: number, "description": "Deliver by noon",
        "customerid_account@odata.bind": f"/accounts({account})", **(header or {}),
    }  # fmt: skip
    made = Document(await crm.create(f"{document}s", body))
    # Created last to first: the ERP lines must follow sequencenumber, not creation order.
    for sequence, line in reversed(list(enumerate(lines, start=1))):
        line_id = await crm.create(
            f"{document}details", _line_body(document, made.crm_id, line, sequence)
        )
        made.line_ids.insert(0, line_id)
    for subject, text in notes:
        made.note_ids.append(await crm.create("annotations", {
            "subject": subject, "notetext": text,
            f"objectid_{document}@odata.bind": f"/{document}s({made.crm_id})",
        }))  # fmt: skip
    return made


async def submit(crm: DataverseClient, order_id: uuid.UUID) -> None:
    await crm.set_state("salesorders", order_id, statecode=1, statuscode=3)


async def activate_quote(crm: DataverseClient, quote_id: uuid.UUID) -> None:
    await crm.set_state("quotes", quote_id, statecode=1, statuscode=2)
