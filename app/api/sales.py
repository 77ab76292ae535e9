"""Sales quotes and orders (with lines, notes and actions) and posted sales invoices.

/sales-quotes, /sales-orders         list, create (lines inline), get (with lines),
                                     PATCH and DELETE while open
/{path}/{no}/lines[/{line_no}]       list, add, get, PATCH, DELETE while open
/{path}/{no}/notes[/{id}]            list, add, PATCH, DELETE (any status)
/{path}/{no}/release | /reopen       status actions (idempotent)
/sales-orders/{no}/post              ship + invoice (optional body: posting_date, lines)
/sales-quotes/{no}/make-order        a new order from the quote; the quote is deleted
/sales-invoices[/{no}[/lines]]       posted invoices, read-only
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response, status
from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.api.deps import SessionDep
from app.api.erp_bodies import with_body
from app.api.erp_lists import ListQueryDep, page_body, public_fields
from app.api.schemas import sales as schemas
from app.api.schemas.erp import MAX_INT
from app.clock import utc_now
from app.erp import listing, notes, posting, sales, sales_actions
from app.models.erp import SalesDocumentType, SalesHeader, SalesInvoiceHeader, SalesInvoiceLine

router = APIRouter()
LineNo = Annotated[int, Path(ge=1, le=MAX_INT)]
HEADER_FIELDS = public_fields(SalesHeader, schemas.HEADER.read)
NO_CONTENT: dict[str, Any] = {"status_code": status.HTTP_204_NO_CONTENT, "response_class": Response}


async def document_detail(session: AsyncSession, header: SalesHeader) -> BaseModel:
    lines = await sales.list_lines(session, header)
    return schemas.DocumentDetail.model_validate(
        {
            **schemas.HEADER.read.model_validate(header).model_dump(),
            "lines": [schemas.LINE.read.model_validate(line) for line in lines],
            **sales.document_totals(lines),
        }
    )


def _document_routes(router: APIRouter, document_type: SalesDocumentType) -> None:
    """List, create, get, update and delete documents of one type."""

    async def list_documents(request: Request, session: SessionDep, query: ListQueryDep) -> Any:
        statement = select(SalesHeader).where(SalesHeader.document_type == document_type)
        page = await listing.list_page(
            session,
            statement,
            fields=HEADER_FIELDS,
            query=query,
            tiebreak=[HEADER_FIELDS["no"].asc()],
        )
        return page_body(
            request, page, query, list_schema=schemas.HEADER.list, read_schema=schemas.HEADER.read
        )

    async def create_document(session: SessionDep, body: BaseModel) -> Any:
        values = body.model_dump(exclude_unset=True)
        lines = values.pop("lines", [])
        header = await sales.create_document(
            session, document_type=document_type, values=values, lines=lines
        )
        return await document_detail(session, header)

    async def get_document(session: SessionDep, no: str) -> Any:
        return await document_detail(
            session, await sales.get_document_or_raise(session, document_type, no)
        )

    async def update_document(session: SessionDep, no: str, body: BaseModel) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        await sales.update_document(session, header, body.model_dump(exclude_unset=True))
        return await document_detail(session, header)

    async def delete_document(session: SessionDep, no: str) -> Response:
        header = await sales.get_document_or_raise(session, document_type, no)
        await sales.delete_document(session, header)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    detail = schemas.DocumentDetail
    router.add_api_route("", list_documents, methods=["GET"], response_model=schemas.HEADER.list)
    router.add_api_route(
        "",
        with_body(create_document, schemas.DocumentCreate),
        methods=["POST"],
        response_model=detail,
        status_code=201,
    )
    router.add_api_route("/{no}", get_document, methods=["GET"], response_model=detail)
    router.add_api_route(
        "/{no}",
        with_body(update_document, schemas.HEADER.update),
        methods=["PATCH"],
        response_model=detail,
    )
    router.add_api_route("/{no}", delete_document, methods=["DELETE"], **NO_CONTENT)


def _line_routes(router: APIRouter, document_type: SalesDocumentType) -> None:
    """The lines of one document: list, add, get, update, delete."""

    async def list_lines(session: SessionDep, no: str) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        lines = await sales.list_lines(session, header)
        return schemas.LineList(items=[schemas.LINE.read.model_validate(line) for line in lines])

    async def add_line(session: SessionDep, no: str, body: BaseModel) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        line = await sales.add_line(session, header, body.model_dump(exclude_unset=True))
        return schemas.LINE.read.model_validate(line)

    async def get_line(session: SessionDep, no: str, line_no: LineNo) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        return schemas.LINE.read.model_validate(
            await sales.get_line_or_raise(session, header, line_no)
        )

    async def update_line(session: SessionDep, no: str, line_no: LineNo, body: BaseModel) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        line = await sales.get_line_or_raise(session, header, line_no)
        changed = await sales.update_line(
            session, header, line, body.model_dump(exclude_unset=True)
        )
        return schemas.LINE.read.model_validate(changed)

    async def delete_line(session: SessionDep, no: str, line_no: LineNo) -> Response:
        header = await sales.get_document_or_raise(session, document_type, no)
        await sales.delete_line(
            session, header, await sales.get_line_or_raise(session, header, line_no)
        )
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    one = schemas.LINE.read
    router.add_api_route(
        "/{no}/lines", list_lines, methods=["GET"], response_model=schemas.LineList
    )
    router.add_api_route(
        "/{no}/lines",
        with_body(add_line, schemas.LINE.create),
        methods=["POST"],
        response_model=one,
        status_code=201,
    )
    router.add_api_route("/{no}/lines/{line_no}", get_line, methods=["GET"], response_model=one)
    router.add_api_route(
        "/{no}/lines/{line_no}",
        with_body(update_line, schemas.LINE.update),
        methods=["PATCH"],
        response_model=one,
    )
    router.add_api_route("/{no}/lines/{line_no}", delete_line, methods=["DELETE"], **NO_CONTENT)


def _note_routes(router: APIRouter, document_type: SalesDocumentType) -> None:
    """Notes on one document: list, add, update, delete."""

    async def list_notes(session: SessionDep, no: str) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        found = await notes.list_notes(session, header)
        return schemas.NoteList(items=[schemas.NOTE.read.model_validate(n) for n in found])

    async def add_note(session: SessionDep, no: str, body: BaseModel) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        note = await notes.create_note(session, header, body.model_dump(exclude_unset=True))
        return schemas.NOTE.read.model_validate(note)

    async def update_note(session: SessionDep, no: str, note_id: str, body: BaseModel) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        note = await notes.get_note_or_raise(session, header, note_id)
        changed = await notes.update_note(session, note, body.model_dump(exclude_unset=True))
        return schemas.NOTE.read.model_validate(changed)

    async def delete_note(session: SessionDep, no: str, note_id: str) -> Response:
        header = await sales.get_document_or_raise(session, document_type, no)
        await notes.delete_note(session, await notes.get_note_or_raise(session, header, note_id))
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    one = schemas.NOTE.read
    router.add_api_route(
        "/{no}/notes", list_notes, methods=["GET"], response_model=schemas.NoteList
    )
    router.add_api_route(
        "/{no}/notes",
        with_body(add_note, schemas.NOTE.create),
        methods=["POST"],
        response_model=one,
        status_code=201,
    )
    router.add_api_route(
        "/{no}/notes/{note_id}",
        with_body(update_note, schemas.NOTE.update),
        methods=["PATCH"],
        response_model=one,
    )
    router.add_api_route("/{no}/notes/{note_id}", delete_note, methods=["DELETE"], **NO_CONTENT)


def _status_routes(router: APIRouter, document_type: SalesDocumentType) -> None:
    async def release(session: SessionDep, no: str) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        return await document_detail(session, await sales_actions.release(session, header))

    async def reopen(session: SessionDep, no: str) -> Any:
        header = await sales.get_document_or_raise(session, document_type, no)
        return await document_detail(session, await sales_actions.reopen(session, header))

    detail = schemas.DocumentDetail
    router.add_api_route("/{no}/release", release, methods=["POST"], response_model=detail)
    router.add_api_route("/{no}/reopen", reopen, methods=["POST"], response_model=detail)


def document_router(document_type: SalesDocumentType, path: str) -> APIRouter:
    router = APIRouter(prefix=f"/{path}", tags=[path])
    _document_routes(router, document_type)
    _line_routes(router, document_type)
    _note_routes(router, document_type)
    _status_routes(router, document_type)
    return router


quotes = document_router(SalesDocumentType.quote, "sales-quotes")
orders = document_router(SalesDocumentType.order, "sales-orders")


@quotes.post("/{no}/make-order", response_model=schemas.DocumentDetail, status_code=201)
async def make_order(session: SessionDep, no: str) -> Any:
    quote = await sales.get_document_or_raise(session, SalesDocumentType.quote, no)
    return await document_detail(session, await sales_actions.make_order(session, quote))


@orders.post("/{no}/post", response_model=schemas.PostResult)
async def post_order(
    session: SessionDep, no: str, body: Annotated[schemas.PostRequest | None, Body()] = None
) -> Any:
    order = await sales.get_document_or_raise(session, SalesDocumentType.order, no)
    request = body or schemas.PostRequest()
    quantities = None if request.lines is None else {p.line_no: p.quantity for p in request.lines}
    posted = await posting.post_order(
        session, order, posting_date=request.posting_date or utc_now().date(), quantities=quantities
    )
    return schemas.PostResult(
        invoice=await invoice_detail(session, posted.invoice),
        is_order_deleted=posted.is_order_deleted,
        order=None if posted.is_order_deleted else await document_detail(session, order),
    )


invoices = APIRouter(prefix="/sales-invoices", tags=["sales-invoices"])
INVOICE_FIELDS = public_fields(SalesInvoiceHeader, schemas.INVOICE.read)


async def _invoice_lines(session: AsyncSession, no: str) -> list[BaseModel]:
    statement = (
        select(SalesInvoiceLine)
        .where(SalesInvoiceLine.document_no == no)
        .order_by(col(SalesInvoiceLine.line_no))
    )
    return [schemas.INVOICE_LINE.read.model_validate(r) for r in await session.exec(statement)]


async def invoice_detail(session: AsyncSession, invoice: SalesInvoiceHeader) -> BaseModel:
    return schemas.InvoiceDetail.model_validate(
        {
            **schemas.INVOICE.read.model_validate(invoice).model_dump(),
            "lines": await _invoice_lines(session, invoice.no),
        }
    )


@invoices.get("", response_model=schemas.INVOICE.list)
async def list_invoices(request: Request, session: SessionDep, query: ListQueryDep) -> Any:
    page = await listing.list_page(
        session,
        select(SalesInvoiceHeader),
        fields=INVOICE_FIELDS,
        query=query,
        tiebreak=[INVOICE_FIELDS["no"].asc()],
    )
    return page_body(
        request, page, query, list_schema=schemas.INVOICE.list, read_schema=schemas.INVOICE.read
    )


@invoices.get("/{no}", response_model=schemas.InvoiceDetail)
async def get_invoice(session: SessionDep, no: str) -> Any:
    return await invoice_detail(session, await posting.get_invoice_or_raise(session, no))


@invoices.get("/{no}/lines", response_model=schemas.InvoiceLineList)
async def list_invoice_lines(session: SessionDep, no: str) -> Any:
    await posting.get_invoice_or_raise(session, no)
    return schemas.InvoiceLineList(items=await _invoice_lines(session, no))


router.include_router(quotes)
router.include_router(orders)
router.include_router(invoices)
