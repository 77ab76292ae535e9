"""Plain values of a table row (attribute reads: rows loaded from the database carry
plain strings where the model declares enums, which ``model_dump`` would warn about)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from app.models.base import TableBase


def row_values(
    row: TableBase, *, include: Collection[str] | None = None, exclude: Collection[str] = ()
) -> dict[str, Any]:
    names = type(row).model_fields if include is None else include
    return {name: getattr(row, name) for name in names if name not in exclude}


MAX_ROW_ID = 2**31 - 1


def as_row_id(key: str) -> int | None:
    """``key`` as an ``id`` when it is one: digits within the INTEGER range."""
    if key.isascii() and key.isdigit() and int(key) <= MAX_ROW_ID:
        return int(key)
    return None
