"""ERP tables as the sync engine sees them: model, natural code, field values, filters.

A mapping names its ERP table by table name; this module turns that into the model, the
column people know a row by (``no`` or ``code``), the values of mapped fields (including
computed ones such as an item's inventory, summed from the ledger a page at a time) and
the mapping's table filter as a SQLAlchemy clause on the real columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.mappings.field_catalog import ERP_MODELS, SQL_TYPES, erp_fields
from app.models import erp
from app.models.base import TableBase
from app.models.integration import IntegrationRecord, SynchResult
from app.odata.errors import ODataFilterError
from app.odata.filters import compile_filter
from app.sync.errors import FatalSyncError


def model_for(table: str) -> type[TableBase]:
    model = ERP_MODELS.get(table)
    if model is None:
        msg = f"The mapping names an unknown ERP table {table!r}."
        raise FatalSyncError(msg)
    return model  # type: ignore[return-value]


def code_field(table: str) -> str | None:
    """The natural key column (``no`` / ``code``), or None for tables keyed otherwise."""
    fields = erp_fields(table)
    return "no" if "no" in fields else "code" if "code" in fields else None


def code_of(table: str, row: Any) -> str:
    name = code_field(table)
    return str(getattr(row, name)) if name else str(row.system_id)


def label(table: str, row: Any) -> str:
    return f"{table.replace('_', ' ')} {code_of(table, row)}"


def column(model: type[Any], name: str) -> Any:
    return model.__table__.c[name]


def filter_clause(table: str, text: str) -> ColumnElement[bool] | None:
    """The mapping's ERP table filter on the model's own columns (None when empty)."""
    if not text.strip():
        return None
    model = model_for(table)
    columns = {
        name: sa.type_coerce(column(model, name), SQL_TYPES[info.type])
        for name, info in erp_fields(table).items()
        if not info.is_computed and info.type in SQL_TYPES
    }
    try:
        return compile_filter(text, columns)
    except ODataFilterError as exc:
        msg = f"The table filter of the {table} mapping cannot be used: {exc.detail}"
        raise FatalSyncError(msg) from exc


def values_of(row: Any, names: Iterable[str], computed: Mapping[str, Any]) -> dict[str, Any]:
    return {name: computed[name] if name in computed else getattr(row, name, None)
            for name in names}  # fmt: skip


async def computed_values(
    session: AsyncSession, table: str, rows: Sequence[Any], names: Iterable[str]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Derived fields per row (``item.inventory``), one query per page, not per row."""
    found: dict[uuid.UUID, dict[str, Any]] = {row.system_id: {} for row in rows}
    if table == "item" and "inventory" in set(names) and rows:
        by_no = {row.no: row.system_id for row in rows}
        entry = erp.ItemLedgerEntry
        statement = (
            select(entry.item_no, func.sum(entry.quantity))
            .where(col(entry.item_no).in_(list(by_no)))
            .group_by(col(entry.item_no))
        )
        totals = dict((await session.exec(statement)).all())
        for no, system_id in by_no.items():
            found[system_id]["inventory"] = Decimal(str(totals.get(no) or 0))
    return found


def failed_to_crm(coupling: Any = IntegrationRecord) -> ColumnElement[bool]:
    """The coupling's last ERP -> CRM sync failed and it is not skipped: retried first."""
    return sa.and_(
        col(coupling.last_synch_crm_result) == SynchResult.failure,
        col(coupling.skipped).is_(False),
    )


def unsent_to_crm(coupling: Any, modified_at: Any) -> ColumnElement[bool]:
    """The ERP row (outer-joined to ``coupling``) is not in the CRM as it is now: not
    coupled, failed, or changed since its last sync."""
    return sa.or_(
        col(coupling.id).is_(None),
        failed_to_crm(coupling),
        modified_at > col(coupling.last_synch_modified_on),
    )


async def coupled_crm_ids(
    session: AsyncSession, *, table: str, codes: Iterable[str]
) -> dict[str, uuid.UUID]:
    """ERP code -> coupled CRM id, for the codes that are coupled (one query)."""
    wanted = sorted({code for code in codes if code})
    name = code_field(table)
    if not wanted or name is None:
        return {}
    model = model_for(table)
    code_column = column(model, name)
    statement = (
        sa.select(code_column, col(IntegrationRecord.crm_id))
        .join(
            IntegrationRecord,
            sa.and_(
                col(IntegrationRecord.table_name) == table,
                col(IntegrationRecord.integration_id) == column(model, "system_id"),
            ),
        )
        .where(code_column.in_(wanted))
    )
    return {str(code): crm_id for code, crm_id in (await session.execute(statement)).all()}


async def coupled_codes(
    session: AsyncSession, *, table: str, crm_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """CRM id -> the code of the coupled ERP row (one query)."""
    wanted = sorted(set(crm_ids), key=str)
    name = code_field(table)
    if not wanted or name is None:
        return {}
    model = model_for(table)
    statement = (
        sa.select(column(IntegrationRecord, "crm_id"), column(model, name))
        .join(model, col(IntegrationRecord.integration_id) == column(model, "system_id"))
        .where(
            col(IntegrationRecord.table_name) == table, col(IntegrationRecord.crm_id).in_(wanted)
        )
    )
    return {crm_id: str(code) for crm_id, code in (await session.execute(statement)).all()}
