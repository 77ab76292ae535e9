"""Column types shared by all tables."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy import DateTime, Dialect
from sqlalchemy.sql import operators
from sqlalchemy.types import TypeDecorator, TypeEngine

# BC's decimals carry 18 significant digits; a signed 64-bit integer holds every 18-digit
# number, so SQLite can carry them exactly as scaled integers (see ``ExactDecimal``).
DECIMAL_PRECISION, DECIMAL_SCALE = 18, 5


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on SQLite (which keeps no offset) and PostgreSQL alike.

    SQLite stores the naive UTC text, so string order is time order and SQL comparisons
    against watermarks stay correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


class DecimalRangeError(ValueError):
    """A value with more integer digits than the column's precision leaves room for."""


class ExactDecimal(TypeDecorator[Decimal]):
    """Exact decimal numbers (amounts, quantities) on both databases.

    PostgreSQL: ``NUMERIC(precision, scale)``. SQLite has no decimal storage (its NUMERIC
    keeps 0.1 as a binary float, and SUM adds floats), so there the column is an INTEGER
    holding the value times ``10**scale``: storage, SUM in triggers, comparisons and
    ORDER BY are integer operations and exact. In SQL on SQLite the column therefore reads
    as the scaled integer; adding or subtracting two such columns, summing them and comparing
    them with values bound through this type are correct, anything else (multiplying,
    dividing, mixing with plain numbers) has to scale explicitly, as ``app.odata`` does.
    Values are rounded half away from zero to ``scale`` (what PostgreSQL does) and refused
    with ``DecimalRangeError`` beyond ``precision - scale`` integer digits.
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int = DECIMAL_PRECISION, scale: int = DECIMAL_SCALE) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self.limit = Decimal(10) ** (precision - scale)  # exclusive bound of |value|
        self.quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale))

    def exact(self, value: Any) -> Decimal:
        """``value`` rounded to the scale; ``DecimalRangeError`` if it does not fit."""
        try:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        except (InvalidOperation, TypeError, ValueError) as exc:
            msg = f"{value!r} is not a decimal number"
            raise DecimalRangeError(msg) from exc
        if not number.is_finite() or abs(number) >= self.limit:
            msg = (
                f"{str(value)[:40]} is out of range: at most {self.precision - self.scale} "
                f"digits before the decimal point"
            )
            raise DecimalRangeError(msg)
        rounded = number.quantize(self.quantum, rounding=ROUND_HALF_UP)
        if abs(rounded) >= self.limit:  # 9999...9.999996 rounds up past the bound
            msg = f"{str(value)[:40]} is out of range once rounded to {self.scale} decimals"
            raise DecimalRangeError(msg)
        return rounded

    def scaled(self, value: Any) -> int:
        """The SQLite representation of ``value``: an integer, value times 10**scale."""
        return int(self.exact(value).scaleb(self.scale))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return self.scaled(value)
        return self.exact(value)

    def process_literal_param(self, value: Any, dialect: Dialect) -> str:
        return str(self.process_bind_param(value, dialect))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name != "sqlite":
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if isinstance(value, int):
            return Decimal(value).scaleb(-self.scale)
        # A REAL: an integer sum that overflowed 64 bits (far out of range anyway).
        return Decimal(repr(float(value))).scaleb(-self.scale)

    def coerce_compared_value(self, op: Any, value: Any) -> Any:
        # A plain number multiplied with or dividing a scaled column must not be scaled
        # itself; refusing beats a silently wrong result on SQLite.
        if op in (operators.mul, operators.truediv, operators.floordiv, operators.mod):
            msg = "ExactDecimal columns only add, subtract and compare in SQL; scale explicitly"
            raise TypeError(msg)
        return self

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal
