"""Request bodies of the generic ERP routes: typing a shared handler, validating rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from app.erp.validation import RowError


def with_body(endpoint: Callable[..., Any], schema: type[BaseModel]) -> Callable[..., Any]:
    """Give a handler shared by many resources its resource's body schema.

    FastAPI reads the ``body`` annotation to validate and document the request, so the one
    generic handler behaves exactly like a hand-written one per resource.
    """
    endpoint.__annotations__ = {**endpoint.__annotations__, "body": schema}
    return endpoint


def validate_rows(
    rows: list[dict[str, Any]], schema: type[BaseModel]
) -> tuple[list[dict[str, Any] | None], list[RowError]]:
    """Each row through ``schema``; every problem of every row is kept, by row index."""
    values: list[dict[str, Any] | None] = []
    errors: list[RowError] = []
    for index, row in enumerate(rows):
        try:
            values.append(schema.model_validate(row).model_dump(exclude_unset=True))
        except ValidationError as exc:
            values.append(None)
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or "(row)"
                errors.append(RowError(index, field, error["msg"]))
    return values, errors
