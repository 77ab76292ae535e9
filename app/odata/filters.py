"""OData ``$filter`` -> a SQLAlchemy boolean clause, over an allow-list of columns.

``compile_filter(text, fields)`` is shared with the ERP REST API. It parses with
odata-query (``filter_syntax``) and then translates the AST itself, typed, instead of using
the library's visitor, because the library has no allow-list (any mapped column is
reachable), no type checks (``ItemNo eq 1000`` becomes a database error), unescaped LIKE
wildcards, case-insensitive LIKE on SQLite, and a full scan for ``startswith``.

Rules enforced here, identical on SQLite and PostgreSQL:
- only the keys of ``fields`` can be named; names match exactly, else case-insensitively;
- operands must have compatible types, else 400 (a string is never compared with a number);
- ``contains``/``startswith``/``endswith`` are case-sensitive and literal: ``%`` and ``_``
  are plain characters. They compile to position/substring comparisons, not LIKE, so
  there is no wildcard to escape and SQLite's case-insensitive LIKE never applies;
- ``startswith(<plain column>, 'p')`` becomes the index range ``col >= 'p' AND col < 'q'``
  (q = p with its last character incremented), correct under code-point order, which
  ``binary_collation`` guarantees on PostgreSQL too;
- string ordering comparisons are by code point; division by zero yields null, not an error;
- every problem raises ``ODataFilterError`` (400) or ``ODataFilterUnsupportedError`` (501).

Parameter aliases (``@p``) are the caller's: ``substitute_aliases`` does it for URL options.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from odata_query import ast
from sqlalchemy.sql.elements import ColumnElement

from app.odata.errors import ODataFilterError, ODataFilterUnsupportedError
from app.odata.filtering.aliases import substitute_aliases
from app.odata.filtering.compare import bind_like, compare
from app.odata.filtering.functions import call
from app.odata.filtering.numbers import arithmetic, in_list, negate, number_literal
from app.odata.filtering.syntax import identifier_name, parse_filter
from app.odata.filtering.types import Kind, Typed, as_condition, kind_of, scale_of

__all__ = ["Kind", "compile_filter", "kind_of", "substitute_aliases"]


def compile_filter(
    filter_text: str, fields: Mapping[str, ColumnElement[Any]]
) -> ColumnElement[bool]:
    """The WHERE clause for ``filter_text``; only ``fields`` (OData name -> column) exist."""
    tree = parse_filter(filter_text)
    result = _Translator(fields).visit(tree)
    if result.kind is not Kind.BOOLEAN:
        msg = "The $filter expression must be a true/false condition."
        raise ODataFilterError(msg)
    if result.is_literal:
        return sa.true() if result.literal else sa.false()
    if result.column is not None:
        clause: ColumnElement[bool] = result.expr.is_(sa.true())
        return clause
    expr: ColumnElement[bool] = result.expr
    return expr


class _Translator:
    def __init__(self, fields: Mapping[str, ColumnElement[Any]]) -> None:
        self.fields = fields
        self.folded = {name.casefold(): name for name in fields}

    def visit(self, node: ast._Node) -> Typed:
        handler: Callable[[Any], Typed] | None = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            msg = f"'{type(node).__name__}' expressions are not supported in $filter."
            raise ODataFilterUnsupportedError(msg)
        return handler(node)

    # -- names -----------------------------------------------------------------------
    def _Identifier(self, node: ast.Identifier) -> Typed:  # noqa: N802
        name = identifier_name(node)
        resolved = name if name in self.fields else self.folded.get(name.casefold())
        if resolved is None:
            msg = f"'{name}' is not a property that can be filtered on."
            raise ODataFilterError(msg)
        column = self.fields[resolved]
        kind = kind_of(column)
        scale = scale_of(column) if kind is Kind.NUMBER else 0
        return Typed(column, kind, column=column, scale=scale)

    def _Attribute(self, node: ast.Attribute) -> Typed:  # noqa: N802
        msg = (
            f"'{_path_text(node)}' is not a property that can be filtered on "
            "(navigation paths are not available)."
        )
        raise ODataFilterError(msg)

    def _CollectionLambda(self, node: ast.CollectionLambda) -> Typed:  # noqa: N802
        msg = "Lambda operators (any/all) are not supported."
        raise ODataFilterUnsupportedError(msg)

    # -- literals ----------------------------------------------------------------------
    def _Null(self, node: ast.Null) -> Typed:  # noqa: N802
        return Typed(sa.null(), Kind.NULL, None, is_literal=True)

    def _Boolean(self, node: ast.Boolean) -> Typed:  # noqa: N802
        value = node.val.lower() == "true"
        return Typed(sa.true() if value else sa.false(), Kind.BOOLEAN, value, is_literal=True)

    def _String(self, node: ast.String) -> Typed:  # noqa: N802
        return Typed(sa.literal(node.val, sa.String()), Kind.STRING, node.val, is_literal=True)

    def _Integer(self, node: ast.Integer) -> Typed:  # noqa: N802
        return number_literal(node.val)

    def _Float(self, node: ast.Float) -> Typed:  # noqa: N802
        return number_literal(node.val)

    def _Date(self, node: ast.Date) -> Typed:  # noqa: N802
        try:
            value = dt.date.fromisoformat(node.val)
        except ValueError as exc:
            msg = f"'{node.val}' is not a valid date."
            raise ODataFilterError(msg) from exc
        return Typed(sa.literal(value, sa.Date()), Kind.DATE, value, is_literal=True)

    def _DateTime(self, node: ast.DateTime) -> Typed:  # noqa: N802
        try:
            value = dt.datetime.fromisoformat(node.val.replace("Z", "+00:00"))
        except ValueError as exc:
            msg = f"'{node.val}' is not a valid date and time."
            raise ODataFilterError(msg) from exc
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
        value = value.astimezone(dt.UTC)
        return Typed(
            sa.literal(value, sa.DateTime(timezone=True)), Kind.DATETIME, value, is_literal=True
        )

    def _GUID(self, node: ast.GUID) -> Typed:  # noqa: N802
        value = uuid.UUID(node.val)
        return Typed(sa.literal(value, sa.Uuid()), Kind.GUID, value, is_literal=True)

    def _Time(self, node: ast.Time) -> Typed:  # noqa: N802
        return Typed(None, Kind.OTHER, node.val, is_literal=True)

    def _Duration(self, node: ast.Duration) -> Typed:  # noqa: N802
        msg = "Duration values are not supported in $filter."
        raise ODataFilterUnsupportedError(msg)

    def _Geography(self, node: ast.Geography) -> Typed:  # noqa: N802
        msg = "Geography values are not supported in $filter."
        raise ODataFilterUnsupportedError(msg)

    def _List(self, node: ast.List) -> Typed:  # noqa: N802
        msg = "A list in parentheses is only allowed after 'in'."
        raise ODataFilterError(msg)

    # -- operators ---------------------------------------------------------------------
    def _BoolOp(self, node: ast.BoolOp) -> Typed:  # noqa: N802
        # Flatten `a or b or c ...` without recursion: long chains are deep trees.
        operands: list[ast._Node] = []
        pending: list[ast._Node] = [node]
        while pending:
            current = pending.pop()
            if isinstance(current, ast.BoolOp) and type(current.op) is type(node.op):
                pending.extend([current.right, current.left])
            else:
                operands.append(current)
        clauses = [as_condition(self.visit(operand), "and/or") for operand in operands]
        combine = sa.and_ if isinstance(node.op, ast.And) else sa.or_
        return Typed(combine(*clauses), Kind.BOOLEAN)

    def _UnaryOp(self, node: ast.UnaryOp) -> Typed:  # noqa: N802
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return Typed(sa.not_(as_condition(operand, "not")), Kind.BOOLEAN)
        if operand.kind is not Kind.NUMBER:
            msg = "The minus sign needs a number."
            raise ODataFilterError(msg)
        return negate(operand)

    def _BinOp(self, node: ast.BinOp) -> Typed:  # noqa: N802
        left, right = self.visit(node.left), self.visit(node.right)
        operator = type(node.op).__name__.lower()
        if left.kind is not Kind.NUMBER or right.kind is not Kind.NUMBER:
            if Kind.NULL in (left.kind, right.kind):
                return Typed(sa.null(), Kind.NULL, None, is_literal=True)
            msg = f"Arithmetic ('{operator}') needs numbers on both sides."
            raise ODataFilterError(msg)
        return arithmetic(operator, left, right)

    def _Compare(self, node: ast.Compare) -> Typed:  # noqa: N802
        left = self.visit(node.left)
        if isinstance(node.comparator, ast.In):
            return self._in(left, node.right)
        right = self.visit(node.right)
        return compare(node.comparator, left, right)

    def _in(self, left: Typed, right_node: ast._Node) -> Typed:
        if not isinstance(right_node, ast.List):
            msg = "'in' needs a list of values in parentheses."
            raise ODataFilterError(msg)
        items = []
        for item in right_node.val:
            typed = self.visit(item)
            if not typed.is_literal:
                msg = "The list after 'in' may hold only literal values."
                raise ODataFilterError(msg)
            items.append(typed)
        if left.kind is Kind.NUMBER and all(i.kind in (Kind.NUMBER, Kind.NULL) for i in items):
            return in_list(left, items)
        return Typed(left.expr.in_([bind_like(left, item) for item in items]), Kind.BOOLEAN)

    def _Call(self, node: ast.Call) -> Typed:  # noqa: N802
        return call(identifier_name(node.func), [self.visit(arg) for arg in node.args])


def _path_text(node: ast._Node) -> str:
    if isinstance(node, ast.Identifier):
        return identifier_name(node)
    if isinstance(node, ast.Attribute):
        return f"{_path_text(node.owner)}/{node.attr}"
    return "?"
