"""Comparisons in ``$filter``: type checks, literal binding, null rules, code-point order."""

from __future__ import annotations

import datetime as dt
import operator
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from odata_query import ast

from app.odata.errors import ODataFilterError
from app.odata.filtering.numbers import compare_numbers
from app.odata.filtering.types import Kind, Typed
from app.odata.sql_constructs import binary_collation

_OPERATORS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("eq", operator.eq),
    ast.NotEq: ("ne", operator.ne),
    ast.Lt: ("lt", operator.lt),
    ast.LtE: ("le", operator.le),
    ast.Gt: ("gt", operator.gt),
    ast.GtE: ("ge", operator.ge),
}
_ORDERABLE = {Kind.STRING, Kind.NUMBER, Kind.DATETIME, Kind.DATE}


def compare(comparator: ast._Comparator, left: Typed, right: Typed) -> Typed:
    name, apply = _OPERATORS[type(comparator)]
    if Kind.NULL in (left.kind, right.kind):
        return _compare_null(name, left, right)
    if name not in ("eq", "ne") and left.kind not in _ORDERABLE:
        msg = f"'{name}' cannot order values of type {left.kind.value}."
        raise ODataFilterError(msg)
    if left.kind is Kind.NUMBER and right.kind is Kind.NUMBER:
        return compare_numbers(name, left, right)
    lhs, rhs = _operands(left, right)
    if left.kind is Kind.STRING and name not in ("eq", "ne"):
        lhs, rhs = binary_collation(lhs), binary_collation(rhs)
    return Typed(apply(lhs, rhs), Kind.BOOLEAN)


def _compare_null(name: str, left: Typed, right: Typed) -> Typed:
    if name not in ("eq", "ne"):
        return Typed(sa.null(), Kind.BOOLEAN)  # ordering against null is never true
    if left.kind is Kind.NULL and right.kind is Kind.NULL:
        value = name == "eq"
        return Typed(sa.true() if value else sa.false(), Kind.BOOLEAN, value, is_literal=True)
    other = right if left.kind is Kind.NULL else left
    if other.kind is Kind.OTHER:
        msg = "This value cannot be compared in $filter."
        raise ODataFilterError(msg)
    clause = other.expr.is_(None) if name == "eq" else other.expr.is_not(None)
    return Typed(clause, Kind.BOOLEAN)


def _operands(left: Typed, right: Typed) -> tuple[Any, Any]:
    """Both sides as SQL, literals bound with the other side's column type."""
    if right.is_literal and not left.is_literal:
        return left.expr, bind_like(left, right)
    if left.is_literal and not right.is_literal:
        return bind_like(right, left), right.expr
    _check_compatible(left, right)
    return left.expr, right.expr


def _check_compatible(left: Typed, right: Typed) -> None:
    if left.kind is Kind.OTHER or right.kind is Kind.OTHER:
        msg = "This value cannot be compared in $filter."
        raise ODataFilterError(msg)
    if left.kind is not right.kind:
        msg = (
            f"Type mismatch in $filter: {_kind_name(left.kind)} compared with "
            f"{_kind_name(right.kind)}."
        )
        raise ODataFilterError(msg)


def bind_like(target: Typed, value: Typed) -> Any:
    """The literal ``value`` as a bound parameter of ``target``'s type, after a type check."""
    if value.kind is Kind.NULL:
        return sa.null()
    literal = _coerce(target, value)
    target_type = target.expr.type if target.expr is not None else None
    if target.kind is Kind.BOOLEAN:
        return sa.literal(literal, sa.Boolean())
    return sa.literal(literal, target_type)


def _coerce(target: Typed, value: Typed) -> Any:
    if target.kind is value.kind and target.kind is not Kind.OTHER:
        return value.literal
    if target.kind is Kind.DATETIME and value.kind is Kind.DATE:
        return dt.datetime.combine(value.literal, dt.time(), tzinfo=dt.UTC)
    if target.kind is Kind.GUID and value.kind is Kind.STRING:
        try:
            return uuid.UUID(value.literal)
        except ValueError as exc:
            msg = f"'{value.literal}' is not a valid GUID."
            raise ODataFilterError(msg) from exc
    msg = (
        f"Type mismatch in $filter: {_kind_name(target.kind)} compared with "
        f"{_kind_name(value.kind)} {_show(value.literal)}."
    )
    raise ODataFilterError(msg)


def _kind_name(kind: Kind) -> str:
    return {Kind.NUMBER: "a number", Kind.STRING: "a string", Kind.NULL: "null"}.get(
        kind, kind.value
    )


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."
