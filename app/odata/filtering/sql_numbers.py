"""SQL for exact numbers: one meaning on SQLite (scaled integers) and PostgreSQL (NUMERIC).

An exact number of scale ``s`` is, in SQL, the integer value times ``10**s`` on SQLite
(how ``ExactDecimal`` stores amounts and quantities) and the plain NUMERIC value on
PostgreSQL. These constructs let ``filter_numbers`` write one expression for both:

- ``ScaledNumber(s)``: the type of a bound literal of scale ``s``;
- ``rescaled(x, k)``: an exact number of scale ``s`` brought to scale ``s + k``;
- ``exact_operand(x, k)``: the same, as an operand of arithmetic (NUMERIC on PostgreSQL,
  where integer arithmetic would overflow with an error);
- ``approximate(x, s)``: an exact number as a plain (floating point on SQLite) value;
- ``integral(x, s, mode)``: floor, ceiling or round (half away from zero) of an exact number
  of scale ``s``, as an exact number of scale 0, in integer arithmetic on SQLite.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine


class ScaledNumber(TypeDecorator[Decimal]):
    """A bound exact number of ``scale`` decimals (the caller checks it fits 64 bits)."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = Decimal(value)
        return int(number.scaleb(self.scale)) if dialect.name == "sqlite" else number

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        return str(self.process_bind_param(value, dialect))


class _Shifted(FunctionElement[Decimal]):
    """Base of constructs whose SQL depends on a number spelled into it (in the cache key)."""

    type = sa.Numeric()
    inherit_cache = True

    def __init__(self, value: ColumnElement[Any], places: int) -> None:
        self.places = places
        super().__init__(value)

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> Any:
        key = super()._gen_cache_key(anon_map, bindparams)
        return (key, type(self).__name__, self.places) if key is not None else None


class rescaled(_Shifted):  # noqa: N801 - reads like a SQL function
    inherit_cache = True
    name = "rescaled"


class exact_operand(_Shifted):  # noqa: N801
    inherit_cache = True
    name = "exact_operand"


class approximate(_Shifted):  # noqa: N801
    inherit_cache = True
    name = "approximate"


def _inner(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(rescaled)
@compiles(exact_operand)
def _shift_sqlite(element: _Shifted, compiler: SQLCompiler, **kw: Any) -> str:
    inner = _inner(element, compiler, **kw)
    return f"({inner} * {10**element.places})" if element.places else inner


@compiles(rescaled, "postgresql")
def _rescaled_pg(element: rescaled, compiler: SQLCompiler, **kw: Any) -> str:
    return _inner(element, compiler, **kw)


@compiles(exact_operand, "postgresql")
def _exact_operand_pg(element: exact_operand, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_inner(element, compiler, **kw)} AS NUMERIC)"


@compiles(approximate)
def _approximate_sqlite(element: approximate, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({_inner(element, compiler, **kw)} / {10**element.places}.0)"


@compiles(approximate, "postgresql")
def _approximate_pg(element: approximate, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_inner(element, compiler, **kw)} AS NUMERIC)"


class integral(FunctionElement[Decimal]):  # noqa: N801
    type = sa.Numeric()
    inherit_cache = True
    name = "integral"

    def __init__(self, value: ColumnElement[Any], scale: int, mode: str) -> None:
        if mode not in ("floor", "ceiling", "round"):
            msg = f"unknown rounding mode {mode!r}"
            raise ValueError(msg)
        self.scale = scale
        self.mode = mode
        super().__init__(value)

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> Any:
        key = super()._gen_cache_key(anon_map, bindparams)
        return (key, self.scale, self.mode) if key is not None else None


@compiles(integral)
def _integral_sqlite(element: integral, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's integer division truncates toward zero; each mode works on |x| and the sign.
    x, m = _inner(element, compiler, **kw), 10**element.scale
    if element.scale == 0:
        return x
    up, down, half = f"(({x}) + {m - 1}) / {m}", f"({x}) / {m}", f"(({x}) + {m // 2}) / {m}"
    neg_up, neg_down = f"-((-({x}) + {m - 1}) / {m})", f"-((-({x})) / {m})"
    neg_half = f"-((-({x}) + {m // 2}) / {m})"
    positive, negative = {
        "floor": (down, neg_up),
        "ceiling": (up, neg_down),
        "round": (half, neg_half),
    }[element.mode]
    return f"(CASE WHEN ({x}) >= 0 THEN {positive} ELSE {negative} END)"


@compiles(integral, "postgresql")
def _integral_pg(element: integral, compiler: SQLCompiler, **kw: Any) -> str:
    function = {"floor": "floor", "ceiling": "ceil", "round": "round"}[element.mode]
    return f"{function}(CAST({_inner(element, compiler, **kw)} AS NUMERIC))"
