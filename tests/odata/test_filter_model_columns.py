"""``compile_filter`` against the real model columns other modules hand it.

Every ``str`` field of a SQLModel table is sqlmodel's ``AutoString`` and every timestamp our
``UTCDateTime``: both are TypeDecorators, whose own ``python_type`` says nothing useful. The
filter typing must see through them (a string column is a string, a watermark a datetime),
and the compiled clauses must run on both databases.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import InvalidInputError
from app.models.erp import Contact, Item
from app.models.integration import IntegrationTableMapping
from app.odata.filters import Kind, compile_filter, kind_of

CONTACT = Contact.__table__.c  # type: ignore[attr-defined]
ITEM = Item.__table__.c  # type: ignore[attr-defined]
MAPPING = IntegrationTableMapping.__table__.c  # type: ignore[attr-defined]
WATERMARK = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        (CONTACT.company_no, Kind.STRING),  # AutoString
        (CONTACT.type, Kind.STRING),  # plain String
        (ITEM.no, Kind.STRING),
        (ITEM.unit_price, Kind.NUMBER),
        (ITEM.blocked, Kind.BOOLEAN),
        (ITEM.system_id, Kind.GUID),
        (ITEM.modified_at, Kind.DATETIME),  # UTCDateTime
        (MAPPING.erp_modified_watermark, Kind.DATETIME),
        (MAPPING.table_filter, Kind.STRING),
    ],
)
def test_kind_of_sees_through_type_decorators(column: Any, kind: Kind) -> None:
    assert kind_of(column) is kind


def test_kind_of_accepts_orm_attributes() -> None:
    assert kind_of(Contact.company_no) is Kind.STRING  # type: ignore[arg-type]
    assert kind_of(IntegrationTableMapping.erp_modified_watermark) is Kind.DATETIME  # type: ignore[arg-type]


def test_string_and_datetime_columns_reject_mismatched_literals() -> None:
    with pytest.raises(InvalidInputError):
        compile_filter("company_no eq 1", {"company_no": CONTACT.company_no})
    with pytest.raises(InvalidInputError):
        compile_filter("watermark lt 'yesterday'", {"watermark": MAPPING.erp_modified_watermark})


async def test_filters_on_model_columns_run_on_the_database(session: AsyncSession) -> None:
    session.add(Contact(no="CT1", company_no="C1", surname="Zed"))
    session.add(Contact(no="CT2", company_no=""))
    session.add(Item(no="I1", description="Chair", unit_price=12))
    session.add(Item(no="I2", description="Desk", unit_price=3, blocked=True))
    session.add(
        IntegrationTableMapping(
            name="ITEM-PRODUCT",
            table_name="item",
            integration_table="product",
            erp_modified_watermark=WATERMARK,
        )
    )
    session.add(IntegrationTableMapping(name="CUST", table_name="customer", integration_table="a"))
    await session.commit()

    contacts = {"company_no": CONTACT.company_no, "surname": CONTACT.surname}
    found = await _numbers(session, CONTACT.no, "company_no ne ''", contacts)
    assert found == ["CT1"]
    found = await _numbers(session, CONTACT.no, "startswith(surname,'Z')", contacts)
    assert found == ["CT1"]

    items = {"no": ITEM.no, "unit_price": ITEM.unit_price, "blocked": ITEM.blocked}
    assert await _numbers(session, ITEM.no, "unit_price gt 5 and not blocked", items) == ["I1"]
    assert await _numbers(session, ITEM.no, "no in ('I2','X')", items) == ["I2"]

    mappings = {"watermark": MAPPING.erp_modified_watermark, "name": MAPPING.name}
    earlier = "watermark lt 2026-01-15T12:00:01Z"
    assert await _numbers(session, MAPPING.name, earlier, mappings) == ["ITEM-PRODUCT"]
    later = "watermark gt 2026-01-15T12:00:00Z or watermark eq null"
    assert await _numbers(session, MAPPING.name, later, mappings) == ["CUST"]
    assert await _numbers(session, MAPPING.name, "year(watermark) eq 2026", mappings) == [
        "ITEM-PRODUCT"
    ]


async def _numbers(
    session: AsyncSession, label: Any, filter_text: str, fields: dict[str, Any]
) -> list[str]:
    clause = compile_filter(filter_text, fields)
    result = await session.exec(select(label).where(clause).order_by(label))  # type: ignore[call-overload]
    return [str(value) for value in result.all()]


def test_compiled_clause_binds_typed_parameters() -> None:
    clause = compile_filter(
        "watermark ge 2026-01-15T12:00:00Z", {"watermark": MAPPING.erp_modified_watermark}
    )
    compiled = clause.compile(compile_kwargs={})
    assert list(compiled.params.values()) == [WATERMARK]
    assert isinstance(clause, sa.sql.ColumnElement)
