"""Row-level problems collected before anything is written, and how they are raised.

A bulk change validates every row first and reports all problems together (422 with
``errors: [{"index", "field", "message"}]``); a single-record change reports its own
problems the same way, without the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from app.errors import ConflictError, ValidationFailedError


@dataclass(frozen=True)
class RowError:
    index: int | None
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"field": self.field, "message": self.message}
        if self.index is not None:
            body = {"index": self.index, **body}
        return body


def raise_row_errors(errors: Sequence[RowError], *, total: int) -> None:
    """Raise one 422 listing every problem, or return when there is none."""
    if not errors:
        return
    ordered = sorted(errors, key=lambda e: (e.index if e.index is not None else -1, e.field))
    if ordered[0].index is None:
        detail = " ".join(e.message for e in ordered)
    else:
        bad_rows = len({e.index for e in ordered})
        detail = f"{bad_rows} of {total} rows are invalid; nothing was written."
    raise ValidationFailedError(detail, errors=[e.as_dict() for e in ordered])


def is_unique_violation(exc: IntegrityError) -> bool:
    text = str(exc.orig).lower()
    return "unique" in text or "duplicate" in text


async def flush_or_conflict(session: AsyncSession, *, duplicate_message: str) -> None:
    """Flush; a constraint the checks could not foresee (a concurrent writer) becomes 409."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise ConflictError(duplicate_message) from exc
        msg = "The change refers to a record that no longer exists, or one still in use."
        raise ConflictError(msg) from exc
