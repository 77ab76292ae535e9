"""What every schema of a stored row shares."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel

from app.models.base import TableBase


class RowRead(BaseModel):
    """A stored row as the API shows it: its ``id`` is the row's system id, never the
    integer key."""

    @classmethod
    def from_row(cls, row: TableBase) -> Self:
        return cls.model_validate({**row.model_dump(warnings=False), "id": row.system_id})
