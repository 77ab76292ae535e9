"""The ERP REST API: master data tables through one generic router, plus ledgers and sales.

Every master table gets the same routes from its :class:`Resource` descriptor:

    GET    /<path>               list (paged, sorted, filtered; see app.api.erp_lists)
    POST   /<path>               create (201)
    POST   /<path>/bulk-upsert   insert or update many rows by natural key, all or nothing
    GET    /<path>/{key}         one row by code / no (by id or system_id where no code)
    PATCH  /<path>/{key}         change the fields sent
    DELETE /<path>/{key}         delete (409 while other records refer to it)

Read and write both need ``integration-user`` (or ``integration-admin``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import ColumnElement
from sqlmodel import select

from app.api import ledger as ledger_api
from app.api import sales as sales_api
from app.api.deps import SessionDep, require_roles
from app.api.erp_bodies import validate_rows, with_body
from app.api.erp_lists import ListQueryDep, page_body, public_fields
from app.api.schemas import erp as schemas
from app.erp import listing, resources, tables
from app.erp.resources import ErpTable
from app.models.security import Role

MAX_BULK_ROWS = 5000


@dataclass(frozen=True)
class RestResource:
    """One master table as the API shows it: URL path, table descriptor, schemas."""

    path: str
    table: ErpTable
    schemas: schemas.SchemaSet

    def fields(self) -> dict[str, ColumnElement[Any]]:
        return public_fields(self.table.model, self.schemas.read)

    def tiebreak(self) -> list[ColumnElement[Any]]:
        columns = sa.inspect(self.table.model).columns
        keys = [self.table.path_key] if self.table.path_key else []
        return [columns[name].asc() for name in [*keys, "id"]]

    def read(self, row: Any) -> BaseModel:
        return self.schemas.read.model_validate(row)


RESOURCES = (
    RestResource("currencies", tables.CURRENCY, schemas.CURRENCY),
    RestResource("units-of-measure", tables.UNIT_OF_MEASURE, schemas.UNIT_OF_MEASURE),
    RestResource("locations", tables.LOCATION, schemas.LOCATION),
    RestResource("items", tables.ITEM, schemas.ITEM),
    RestResource("resources", tables.RESOURCE, schemas.RESOURCE),
    RestResource(
        "customer-price-groups", tables.CUSTOMER_PRICE_GROUP, schemas.CUSTOMER_PRICE_GROUP
    ),
    RestResource("sales-prices", tables.SALES_PRICE, schemas.SALES_PRICE),
    RestResource("salespeople", tables.SALESPERSON, schemas.SALESPERSON),
    RestResource("customers", tables.CUSTOMER, schemas.CUSTOMER),
    RestResource("contacts", tables.CONTACT, schemas.CONTACT),
    RestResource("opportunities", tables.OPPORTUNITY, schemas.OPPORTUNITY),
    RestResource("purchase-lines", tables.PURCHASE_LINE, schemas.PURCHASE_LINE),
)


def _list_endpoint(resource: RestResource) -> Callable[..., Any]:
    async def list_rows(request: Request, session: SessionDep, query: ListQueryDep) -> Any:
        page = await listing.list_page(
            session,
            select(resource.table.model),
            fields=resource.fields(),
            query=query,
            tiebreak=resource.tiebreak(),
        )
        return page_body(
            request,
            page,
            query,
            list_schema=resource.schemas.list,
            read_schema=resource.schemas.read,
        )

    return list_rows


def _get_endpoint(resource: RestResource) -> Callable[..., Any]:
    async def get_row(session: SessionDep, key: str) -> Any:
        return resource.read(await resources.get_row_or_raise(session, resource.table, key))

    return get_row


def _create_endpoint(resource: RestResource) -> Callable[..., Any]:
    async def create_row(session: SessionDep, body: BaseModel) -> Any:
        values = body.model_dump(exclude_unset=True)
        return resource.read(await resources.create_row(session, resource.table, values))

    return with_body(create_row, resource.schemas.create)


def _update_endpoint(resource: RestResource) -> Callable[..., Any]:
    async def update_row(session: SessionDep, key: str, body: BaseModel) -> Any:
        row = await resources.get_row_or_raise(session, resource.table, key)
        values = body.model_dump(exclude_unset=True)
        return resource.read(await resources.update_row(session, resource.table, row, values))

    return with_body(update_row, resource.schemas.update)


def _delete_endpoint(resource: RestResource) -> Callable[..., Any]:
    async def delete_row(session: SessionDep, key: str) -> Response:
        row = await resources.get_row_or_raise(session, resource.table, key)
        await resources.delete_row(session, resource.table, row)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return delete_row


def _bulk_upsert_endpoint(resource: RestResource) -> Callable[..., Any]:
    async def bulk_upsert(
        session: SessionDep,
        body: Annotated[list[dict[str, Any]], Body(max_length=MAX_BULK_ROWS)],
    ) -> Any:
        values, errors = validate_rows(body, resource.schemas.create)
        result = await resources.upsert_rows(session, resource.table, values, errors=errors)
        return resource.schemas.upsert_result(
            inserted=result.inserted,
            updated=result.updated,
            items=[resource.read(row) for row in result.rows],
        )

    return bulk_upsert


def resource_router(resource: RestResource) -> APIRouter:
    router = APIRouter(prefix=f"/{resource.path}", tags=[resource.path])
    name = resource.path.replace("-", "_")
    one = resource.schemas.read
    router.add_api_route(
        "",
        _list_endpoint(resource),
        methods=["GET"],
        response_model=resource.schemas.list,
        name=f"list_{name}",
    )
    router.add_api_route(
        "",
        _create_endpoint(resource),
        methods=["POST"],
        response_model=one,
        status_code=status.HTTP_201_CREATED,
        name=f"create_{name}",
    )
    router.add_api_route(
        "/bulk-upsert",
        _bulk_upsert_endpoint(resource),
        methods=["POST"],
        response_model=resource.schemas.upsert_result,
        name=f"bulk_upsert_{name}",
    )
    router.add_api_route(
        "/{key}", _get_endpoint(resource), methods=["GET"], response_model=one, name=f"get_{name}"
    )
    router.add_api_route(
        "/{key}",
        _update_endpoint(resource),
        methods=["PATCH"],
        response_model=one,
        name=f"update_{name}",
    )
    router.add_api_route(
        "/{key}",
        _delete_endpoint(resource),
        methods=["DELETE"],
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        name=f"delete_{name}",
    )
    return router


router = APIRouter(dependencies=[Depends(require_roles(Role.integration_user))])
for _resource in RESOURCES:
    router.include_router(resource_router(_resource))
router.include_router(ledger_api.router)
router.include_router(sales_api.router)
