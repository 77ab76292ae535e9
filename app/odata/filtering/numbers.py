"""Numbers in ``$filter``: exact comparisons and arithmetic, alike on SQLite and PostgreSQL.

Every number carries a ``scale``, the decimals it holds exactly: an ``ExactDecimal``
column (amounts, quantities; scaled integers on SQLite) its column's scale, integers 0,
a literal the decimals it is written with; ``None`` marks an approximate number (a
division, a float column). Then:

- a column compared with a literal binds the literal at the column's scale: on SQLite an
  integer comparison that the column's index serves. A literal with more decimals than
  the column equals no stored value: ``lt``/``le`` become ``le`` the literal rounded
  down, ``gt``/``ge`` ``ge`` rounded up, ``eq`` is never true. A literal beyond the
  column's range compares as the range's bound, which no stored value reaches;
- ``add``, ``sub`` and ``mod`` bring both sides to the larger scale, ``mul`` adds the
  scales: exact (on SQLite while the product fits 64 bits); ``div`` is approximate, as is
  anything combined with an approximate number; ``round``/``floor``/``ceiling`` of an
  exact number are exact;
- operations on two literals are done here, in Python's decimal arithmetic.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from app.models.types import ExactDecimal
from app.odata.errors import ODataFilterError
from app.odata.filtering.sql_numbers import (
    ScaledNumber,
    approximate,
    exact_operand,
    integral,
    rescaled,
)
from app.odata.filtering.types import INT32, Kind, Typed

MAX_NUMBER = Decimal("1e30")
INT64 = 2**63
MAX_EXACT_SCALE = 18
DIVISION_DECIMALS = 10
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
_MIRRORED = {"eq": "eq", "ne": "ne", "lt": "gt", "le": "ge", "gt": "lt", "ge": "le"}
ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mult": operator.mul,
    "div": operator.truediv,
    "mod": operator.mod,
}
_ROUNDING = {"floor": ROUND_FLOOR, "ceiling": ROUND_CEILING, "round": ROUND_HALF_UP}


def _scale_of_literal(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


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
        return _literal(int(value))
    return _literal(value)


def _literal(value: int | Decimal) -> Typed:
    scale = 0 if isinstance(value, int) else _scale_of_literal(value)
    if isinstance(value, int) and -INT32 <= value < INT32:
        expr: Any = sa.literal(value, sa.Integer())
    elif scale <= MAX_EXACT_SCALE and abs(Decimal(value).scaleb(scale)) < INT64:
        expr = sa.literal(Decimal(value), ScaledNumber(scale))
    else:
        expr = sa.literal(Decimal(value), sa.Numeric(38, 10))
    return Typed(expr, Kind.NUMBER, value, is_literal=True, scale=scale)


def _constant(value: bool) -> Typed:  # noqa: FBT001
    return Typed(sa.true() if value else sa.false(), Kind.BOOLEAN, value, is_literal=True)


# -- comparisons ----------------------------------------------------------------------------


def compare_numbers(name: str, left: Typed, right: Typed) -> Typed:
    if left.is_literal and right.is_literal:
        return _constant(bool(COMPARISONS[name](Decimal(left.literal), Decimal(right.literal))))
    if left.is_literal:
        return compare_numbers(_MIRRORED[name], right, left)
    apply = COMPARISONS[name]
    if right.is_literal:
        return _against_literal(name, left, Decimal(right.literal))
    if left.scale is None or right.scale is None:
        return Typed(apply(_approximate(left), _approximate(right)), Kind.BOOLEAN)
    target = max(left.scale, right.scale)
    lhs, rhs = _shifted(left.expr, target - left.scale), _shifted(right.expr, target - right.scale)
    return Typed(apply(lhs, rhs), Kind.BOOLEAN)


def _against_literal(name: str, number: Typed, value: Decimal) -> Typed:
    apply, expr, scale = COMPARISONS[name], number.expr, number.scale
    if scale is None:
        return Typed(apply(expr, sa.literal(value, sa.Numeric(38, 10))), Kind.BOOLEAN)
    value = _clamped(number, value)
    scaled = value.scaleb(scale)
    if scaled == scaled.to_integral_value():
        return Typed(apply(expr, _bound(number, value)), Kind.BOOLEAN)
    if name in ("eq", "ne"):  # equal to no value of this scale; `x <> x` keeps null as null
        return Typed(expr != expr if name == "eq" else expr == expr, Kind.BOOLEAN)
    below = scaled.to_integral_value(ROUND_FLOOR).scaleb(-scale)
    if name in ("lt", "le"):
        return Typed(expr <= _bound(number, below), Kind.BOOLEAN)
    return Typed(expr >= _bound(number, below + Decimal(1).scaleb(-scale)), Kind.BOOLEAN)


def _clamped(number: Typed, value: Decimal) -> Decimal:
    """A column's values lie inside its range: beyond it, its bound compares the same."""
    column_type = number.column.type if number.column is not None else None
    if isinstance(column_type, ExactDecimal):
        limit = column_type.limit
    elif number.column is not None and number.scale == 0:
        limit = Decimal(INT64 - 1)  # integer columns are 64 bits at most
    else:
        return value
    return max(-limit, min(limit, value))


def _bound(number: Typed, value: Decimal) -> Any:
    """``value`` (exact at ``number``'s scale) bound to compare with ``number``."""
    column = number.column
    if column is not None and number.scale == 0 and -INT32 <= value < INT32:
        return sa.literal(int(value), column.type)
    return _scaled_literal(value, number.scale or 0)


def _scaled_literal(value: Decimal, scale: int) -> Any:
    if abs(value.scaleb(scale)) >= INT64:
        msg = f"The number {value} is too large to compute with exactly in $filter."
        raise ODataFilterError(msg)
    return sa.literal(value, ScaledNumber(scale))


def _shifted(expr: Any, places: int) -> Any:
    return rescaled(expr, places) if places else expr


def _approximate(number: Typed) -> Any:
    if number.is_literal:
        return sa.literal(Decimal(number.literal), sa.Numeric(38, 10))
    if number.scale is None:
        return number.expr
    return approximate(number.expr, number.scale)


def in_list(number: Typed, items: list[Typed]) -> Typed:
    """``number in (literals...)``: literals no value of its scale can equal are left out."""
    values: list[Any] = []
    for item in items:
        if item.kind is Kind.NULL:
            values.append(sa.null())
            continue
        value = Decimal(item.literal)
        if number.scale is None:
            values.append(sa.literal(value, sa.Numeric(38, 10)))
            continue
        scaled = value.scaleb(number.scale)
        if scaled == scaled.to_integral_value() and _clamped(number, value) == value:
            values.append(_bound(number, value))
    if not values:
        return Typed(number.expr != number.expr, Kind.BOOLEAN)
    return Typed(number.expr.in_(values), Kind.BOOLEAN)


# -- arithmetic -----------------------------------------------------------------------------


def arithmetic(name: str, left: Typed, right: Typed) -> Typed:
    if name in ("div", "mod") and right.is_literal and right.literal == 0:
        msg = "Division by zero in $filter."
        raise ODataFilterError(msg)
    if left.is_literal and right.is_literal:
        return _folded(name, Decimal(left.literal), Decimal(right.literal))
    apply = ARITHMETIC[name]
    scale = _result_scale(name, left.scale, right.scale)
    if scale is None:
        lhs, rhs = _approximate(left), _approximate(right)
        if name in ("div", "mod"):
            rhs = sa.func.nullif(rhs, 0)  # null, not a database error, for a zero divisor
        return Typed(apply(lhs, rhs), Kind.NUMBER, scale=None)
    assert left.scale is not None and right.scale is not None  # noqa: S101 - exact here
    if name == "mult":
        lhs, rhs = _operand(left, 0), _operand(right, 0)
    else:
        lhs, rhs = _operand(left, scale - left.scale), _operand(right, scale - right.scale)
    if name == "mod":
        rhs = sa.func.nullif(rhs, 0)
    return Typed(apply(lhs, rhs), Kind.NUMBER, scale=scale)


def _result_scale(name: str, left: int | None, right: int | None) -> int | None:
    if left is None or right is None or name == "div":
        return None
    scale = left + right if name == "mult" else max(left, right)
    return scale if scale <= MAX_EXACT_SCALE else None


def _operand(number: Typed, places: int) -> Any:
    assert number.scale is not None  # noqa: S101 - only exact numbers get here
    if number.is_literal:
        return _scaled_literal(Decimal(number.literal), number.scale + places)
    return exact_operand(number.expr, places)


def _folded(name: str, left: Decimal, right: Decimal) -> Typed:
    try:
        value = ARITHMETIC[name](left, right)
        if name == "div":
            value = value.quantize(Decimal(1).scaleb(-DIVISION_DECIMALS), ROUND_HALF_UP)
    except InvalidOperation as exc:
        msg = "A number in $filter is out of range."
        raise ODataFilterError(msg) from exc
    if abs(value) >= MAX_NUMBER:
        msg = "A number in $filter is out of range."
        raise ODataFilterError(msg)
    return _literal(int(value) if value == value.to_integral_value() else value)


def negate(number: Typed) -> Typed:
    if number.is_literal:
        value = -Decimal(number.literal)
        return _literal(int(value) if isinstance(number.literal, int) else value)
    if number.scale is None:
        return Typed(-number.expr, Kind.NUMBER, scale=None)
    return Typed(-exact_operand(number.expr, 0), Kind.NUMBER, scale=number.scale)


def to_integral(mode: str, number: Typed) -> Typed:
    """``floor``, ``ceiling`` or ``round`` (half away from zero) of a number."""
    if number.is_literal:
        value = Decimal(number.literal).quantize(Decimal(1), rounding=_ROUNDING[mode])
        return _literal(int(value))
    if number.scale is None:
        function = {"floor": sa.func.floor, "ceiling": sa.func.ceil, "round": sa.func.round}
        exact = sa.cast(number.expr, sa.Numeric(38, 10))  # PostgreSQL rounds floats to even
        return Typed(function[mode](exact), Kind.NUMBER, scale=None)
    return Typed(integral(number.expr, number.scale, mode), Kind.NUMBER, scale=0)
