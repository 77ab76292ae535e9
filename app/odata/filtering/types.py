"""The types ``$filter`` expressions carry while they are translated (see ``filters``)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from app.models.types import ExactDecimal
from app.odata.errors import ODataFilterError

INT32 = 2**31


class Kind(Enum):
    STRING = "Edm.String"
    NUMBER = "number"
    BOOLEAN = "Edm.Boolean"
    DATETIME = "Edm.DateTimeOffset"
    DATE = "Edm.Date"
    GUID = "Edm.Guid"
    NULL = "null"
    OTHER = "other"


_PYTHON_KINDS: list[tuple[type, Kind]] = [
    (bool, Kind.BOOLEAN),
    (str, Kind.STRING),
    (int, Kind.NUMBER),
    (float, Kind.NUMBER),
    (Decimal, Kind.NUMBER),
    (dt.datetime, Kind.DATETIME),
    (dt.date, Kind.DATE),
    (uuid.UUID, Kind.GUID),
]


def scale_of(column: ColumnElement[Any]) -> int | None:
    """Decimals a numeric column holds exactly: its scale, 0 for integers, None for floats."""
    type_ = column.type
    if isinstance(type_, ExactDecimal):
        return type_.scale
    while isinstance(type_, sa.types.TypeDecorator):
        type_ = type_.impl_instance
    return 0 if isinstance(type_, sa.Integer) else None


def kind_of(column: ColumnElement[Any]) -> Kind:
    """The filter type of a column, from the Python type its SQL type maps to."""
    type_ = column.type
    while isinstance(type_, sa.types.TypeDecorator):  # e.g. UTCDateTime: ask what it wraps
        type_ = type_.impl_instance
    try:
        python_type = type_.python_type
    except NotImplementedError:
        return Kind.OTHER
    for base, kind in _PYTHON_KINDS:
        if issubclass(python_type, base):
            return kind
    return Kind.OTHER


@dataclass(frozen=True)
class Typed:
    expr: Any
    kind: Kind
    literal: Any = None
    is_literal: bool = False
    column: ColumnElement[Any] | None = None  # set when this is a property from `fields`
    # Numbers only: decimals carried exactly (see filter_numbers); None = approximate.
    scale: int | None = 0


def as_condition(typed: Typed, operator: str) -> Any:
    if typed.kind is Kind.NULL:
        return sa.null()
    if typed.kind is not Kind.BOOLEAN:
        msg = f"'{operator}' needs true/false conditions on both sides."
        raise ODataFilterError(msg)
    if typed.column is not None:
        return typed.expr.is_(sa.true())
    return typed.expr
