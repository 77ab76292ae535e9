"""Reading HTML forms into the REST API's request schemas, so the console validates input
with exactly the rules the API applies (lengths, ranges, enums, extra fields refused).

A form sends every field as text; a checkbox is a hidden ``false`` followed by the box's
``true``, so the last value of a name is the one that counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.errors import ValidationFailedError
from app.web.cookies import CSRF_FIELD

M = TypeVar("M", bound=BaseModel)


async def form_values(request: Request) -> dict[str, str]:
    """The last value of each field, without the CSRF token; files are refused."""
    form = await request.form()
    values: dict[str, str] = {}
    for name in form:
        if name == CSRF_FIELD:
            continue
        value = form.getlist(name)[-1]
        if not isinstance(value, str):
            msg = f"The field {name[:40]!r} must be text."
            raise ValidationFailedError(msg)
        values[name] = value
    return values


async def form_lists(request: Request, name: str) -> list[str]:
    """Every value of a repeated field (several checkboxes of one name)."""
    form = await request.form()
    return [value for value in form.getlist(name) if isinstance(value, str) and value]


def without_blanks(values: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """Drop the named fields when left empty (a blank secret field keeps the stored one)."""
    blank = {name for name in names if not values.get(name)}
    return {name: value for name, value in values.items() if name not in blank}


def parse(schema: type[M], values: Mapping[str, Any]) -> M:
    """The values as the API schema; its validation errors as the API words them."""
    try:
        return schema.model_validate(dict(values))
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(part) for part in err["loc"]) or "form",
                "message": err["msg"],
            }
            for err in exc.errors()
        ]
        msg = "Some values are not valid: " + "; ".join(
            f"{e['field']}: {e['message']}" for e in errors[:5]
        )
        raise ValidationFailedError(msg, errors=errors) from None
