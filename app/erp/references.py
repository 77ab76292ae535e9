"""References by code between ERP rows, checked before the database sees them.

The database refuses a dangling foreign key too, but only with a generic message; these
checks name the field and the missing code, and they cover references the schema cannot
express as foreign keys (a sales line's ``no`` is an item or a resource, by ``type``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.erp.validation import RowError
from app.models.base import TableBase

CHUNK = 500
T = TypeVar("T")


def chunked(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@dataclass(frozen=True)
class Reference:
    """``field`` holds a ``target_field`` value of a ``target`` row (when ``applies``)."""

    field: str
    target: type[TableBase]
    target_field: str
    label: str
    applies: Callable[[Mapping[str, Any]], bool] | None = None

    def value_in(self, row: Mapping[str, Any]) -> str | None:
        value = row.get(self.field)
        if value is None or value == "":
            return None
        if self.applies is not None and not self.applies(row):
            return None
        return str(value)

    def message(self, value: str) -> str:
        return f"{self.label} '{value}' does not exist."


async def existing_codes(
    session: AsyncSession, target: type[TableBase], target_field: str, codes: Iterable[str]
) -> set[str]:
    column = col(getattr(target, target_field))
    found: set[str] = set()
    for chunk in chunked(sorted(set(codes))):
        found.update(str(v) for v in (await session.exec(select(column).where(column.in_(chunk)))))
    return found


async def missing_references(
    session: AsyncSession,
    references: Sequence[Reference],
    rows: Sequence[tuple[int | None, Mapping[str, Any]]],
    *,
    pending: Mapping[tuple[type[TableBase], str], set[str]] | None = None,
) -> list[RowError]:
    """One query per reference for the whole batch; ``pending`` codes are being created."""
    errors: list[RowError] = []
    for reference in references:
        wanted = {index: reference.value_in(row) for index, row in rows}
        codes = {code for code in wanted.values() if code is not None}
        if not codes:
            continue
        found = await existing_codes(session, reference.target, reference.target_field, codes)
        found |= (pending or {}).get((reference.target, reference.target_field), set())
        errors.extend(
            RowError(index, reference.field, reference.message(code))
            for index, code in wanted.items()
            if code is not None and code not in found
        )
    return errors
