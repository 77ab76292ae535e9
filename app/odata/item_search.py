"""Finding items for a person: by number or description, in any case.

The CRM's ``$filter`` compares text exactly; someone searching the console for "wheel"
expects "Front Wheel" too. This finds the item numbers (one indexed-order scan of
``item_availability``); the console then reads those items through the OData service's
own statements, so what it shows is what the CRM gets.
"""

from __future__ import annotations

from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.models.availability import ItemAvailabilityRow


def _pattern(text: str, *, prefix: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%" if prefix else f"%{escaped}%"


async def find_item_numbers(
    session: AsyncSession, *, text: str, after: str | None, limit: int
) -> list[str]:
    """Item numbers starting with ``text`` or whose description contains it, in order."""
    row = ItemAvailabilityRow
    number, description = col(row.item_no), col(row.description)
    if session.get_bind().dialect.name == "sqlite":  # LIKE ignores ASCII case there
        found = or_(
            number.like(_pattern(text, prefix=True), escape="\\"),
            description.like(_pattern(text, prefix=False), escape="\\"),
        )
    else:
        found = or_(
            number.ilike(_pattern(text, prefix=True), escape="\\"),
            description.ilike(_pattern(text, prefix=False), escape="\\"),
        )
    statement = select(row.item_no).where(found)
    if after is not None:
        statement = statement.where(number > after)
    return list(await session.exec(statement.order_by(number).limit(limit)))
