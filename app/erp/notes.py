"""Notes on sales documents (BC record links), keyed by the header's table and system_id.

Notes may be added and edited in any document status: they are remarks, not terms.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.erp.rows import as_row_id
from app.errors import NotFoundError
from app.models.erp import Note, SalesHeader

RECORD_TABLE = "sales_header"


def _for_header(header: SalesHeader) -> Any:
    return select(Note).where(Note.record_table == RECORD_TABLE, Note.record_id == header.system_id)


async def list_notes(session: AsyncSession, header: SalesHeader) -> Sequence[Note]:
    statement = _for_header(header).order_by(col(Note.created_at), col(Note.id))
    notes: Sequence[Note] = (await session.exec(statement)).all()
    return notes


async def get_note_or_raise(session: AsyncSession, header: SalesHeader, key: str) -> Note:
    """A note of ``header`` by ``id`` or ``system_id``."""
    statement = _for_header(header)
    if (row_id := as_row_id(key)) is not None:
        statement = statement.where(col(Note.id) == row_id)
    else:
        try:
            statement = statement.where(col(Note.system_id) == uuid.UUID(key))
        except ValueError:
            statement = None
    note: Note | None = (await session.exec(statement)).first() if statement is not None else None
    if note is None:
        msg = f"Note '{key}' was not found on {header.document_type} '{header.no}'."
        raise NotFoundError(msg)
    return note


async def create_note(
    session: AsyncSession, header: SalesHeader, values: Mapping[str, Any]
) -> Note:
    note = Note(record_table=RECORD_TABLE, record_id=header.system_id, **values)
    session.add(note)
    await session.flush()
    return note


async def update_note(session: AsyncSession, note: Note, values: Mapping[str, Any]) -> Note:
    for name, value in values.items():
        setattr(note, name, value)
    session.add(note)
    await session.flush()
    return note


async def delete_note(session: AsyncSession, note: Note) -> None:
    await session.delete(note)
    await session.flush()
