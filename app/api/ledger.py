"""Item and customer ledger entries: append-only, numbered by the server.

There is no PATCH, PUT or DELETE on an entry (405): a wrong entry is corrected by
posting another one, as in BC.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, status
from pydantic import BaseModel
from sqlmodel import select

from app.api.deps import SessionDep
from app.api.erp_bodies import with_body
from app.api.erp_lists import ListQueryDep, page_body, public_fields
from app.api.schemas import erp as schemas
from app.api.schemas.erp import MAX_INT
from app.erp import ledger, listing
from app.models.base import TableBase
from app.models.erp import CustLedgerEntry, ItemLedgerEntry

router = APIRouter()
EntryNo = Annotated[int, Path(ge=1, le=MAX_INT)]
ILE = schemas.ITEM_LEDGER_ENTRY
CLE = schemas.CUST_LEDGER_ENTRY


async def _list(
    request: Request,
    session: Any,
    query: listing.ListQuery,
    model: type[TableBase],
    ladder: schemas.SchemaSet,
) -> BaseModel:
    fields = public_fields(model, ladder.read)
    page = await listing.list_page(
        session, select(model), fields=fields, query=query, tiebreak=[fields["entry_no"].asc()]
    )
    return page_body(request, page, query, list_schema=ladder.list, read_schema=ladder.read)


@router.get("/item-ledger-entries", response_model=ILE.list, tags=["item-ledger-entries"])
async def list_item_ledger_entries(
    request: Request, session: SessionDep, query: ListQueryDep
) -> Any:
    return await _list(request, session, query, ItemLedgerEntry, ILE)


async def post_item_ledger_entry(session: SessionDep, body: BaseModel) -> Any:
    entry = await ledger.post_item_entry(session, body.model_dump(exclude_unset=True))
    return ILE.read.model_validate(entry)


router.add_api_route(
    "/item-ledger-entries",
    with_body(post_item_ledger_entry, ILE.create),
    methods=["POST"],
    response_model=ILE.read,
    status_code=status.HTTP_201_CREATED,
    tags=["item-ledger-entries"],
)


@router.get(
    "/item-ledger-entries/{entry_no}", response_model=ILE.read, tags=["item-ledger-entries"]
)
async def get_item_ledger_entry(session: SessionDep, entry_no: EntryNo) -> Any:
    return ILE.read.model_validate(
        await ledger.get_entry_or_raise(session, ItemLedgerEntry, entry_no)
    )


@router.get("/customer-ledger-entries", response_model=CLE.list, tags=["customer-ledger-entries"])
async def list_customer_ledger_entries(
    request: Request, session: SessionDep, query: ListQueryDep
) -> Any:
    return await _list(request, session, query, CustLedgerEntry, CLE)


@router.post(
    "/customer-ledger-entries/payments",
    response_model=schemas.PaymentRead,
    status_code=status.HTTP_201_CREATED,
    tags=["customer-ledger-entries"],
)
async def post_payment(session: SessionDep, body: schemas.PaymentCreate) -> Any:
    payment = await ledger.post_payment(session, **body.model_dump())
    applied = [
        schemas.AppliedEntry(
            entry_no=entry.entry_no,
            document_no=entry.document_no,
            amount_applied=share,
            remaining_amount_lcy=entry.remaining_amount_lcy,
            open=entry.open,
        )
        for entry, share in payment.applied
    ]
    return schemas.PaymentRead(payment=CLE.read.model_validate(payment.entry), applied=applied)


@router.get(
    "/customer-ledger-entries/{entry_no}", response_model=CLE.read, tags=["customer-ledger-entries"]
)
async def get_customer_ledger_entry(session: SessionDep, entry_no: EntryNo) -> Any:
    return CLE.read.model_validate(
        await ledger.get_entry_or_raise(session, CustLedgerEntry, entry_no)
    )
