"""The types ``$filter`` expressions carry while they are translated (see ``filters``)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from app.odata.errors import ODataFilterError

INT32 = 2**31
MAX_NUMBER = Decimal("1e30")


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


def number_literal(text: str) -> Typed:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        msg = f"'{text}' is not a valid number."
        raise ODataFilterError(msg) from exc
    if not value.is_finite() or abs(value) >= MAX_NUMBER:
        msg = f"The number '{text}' is out of range."
        raise ODataFilterError(msg)
    if value == value.to_integral_value() and "." not in text and "e" not in text.lower():
        integer = int(value)
        kind_type: sa.types.TypeEngine[Any] = (
            sa.Integer() if -INT32 <= integer < INT32 else sa.Numeric(38, 0)
        )
        return Typed(sa.literal(integer, kind_type), Kind.NUMBER, integer, is_literal=True)
    return Typed(sa.literal(value, sa.Numeric(38, 10)), Kind.NUMBER, value, is_literal=True)


def as_numeric(typed: Typed) -> Any:
    """Arithmetic in NUMERIC: PostgreSQL integer arithmetic would overflow with an error."""
    if typed.is_literal:
        return sa.literal(typed.literal, sa.Numeric(38, 10))
    return sa.cast(typed.expr, sa.Numeric(38, 10))


def as_condition(typed: Typed, operator: str) -> Any:
    if typed.kind is Kind.NULL:
        return sa.null()
    if typed.kind is not Kind.BOOLEAN:
        msg = f"'{operator}' needs true/false conditions on both sides."
        raise ODataFilterError(msg)
    if typed.column is not None:
        return typed.expr.is_(sa.true())
    return typed.expr
