"""SQL pieces whose spelling differs between SQLite and PostgreSQL, with one meaning on both.

- ``binary_collation(x)``: compare and sort strings by code point. SQLite's default
  ``BINARY`` collation already does; PostgreSQL needs ``COLLATE "C"`` unless the database
  was created with it (and then the clause is harmless).
- ``text_position(haystack, needle)``: 1-based position of a substring, 0 if absent,
  case-sensitive and without wildcards (SQLite ``instr``, PostgreSQL ``strpos``).
- ``utc_part(field, x)``: a date/time part of an aware timestamp, read in UTC.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class binary_collation(FunctionElement[str]):  # noqa: N801 - reads like a SQL function
    type = String()
    inherit_cache = True
    name = "binary_collation"


@compiles(binary_collation)
def _binary_collation_default(element: binary_collation, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(binary_collation, "postgresql")
def _binary_collation_pg(element: binary_collation, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class text_position(FunctionElement[int]):  # noqa: N801
    type = Integer()
    inherit_cache = True
    name = "text_position"


@compiles(text_position)
def _text_position_default(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(text_position, "postgresql")
def _text_position_pg(element: text_position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


_SQLITE_PARTS = {
    "year": "%Y",
    "month": "%m",
    "day": "%d",
    "hour": "%H",
    "minute": "%M",
    "second": "%S",
}


class utc_part(FunctionElement[int]):  # noqa: N801
    type = Integer()
    inherit_cache = True
    name = "utc_part"

    def __init__(self, part: str, value: ColumnElement[Any], *, is_timestamp: bool) -> None:
        if part not in _SQLITE_PARTS:
            msg = f"unknown date part {part!r}"
            raise ValueError(msg)
        self.part = part
        self.is_timestamp = is_timestamp
        super().__init__(value)

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> Any:
        # The part is spelled into the SQL text, so it must be part of the cache key.
        key = super()._gen_cache_key(anon_map, bindparams)
        return (key, self.part, self.is_timestamp) if key is not None else None


@compiles(utc_part)
def _utc_part_sqlite(element: utc_part, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps our timestamps as naive UTC text (app.models.types.UTCDateTime).
    value = compiler.process(element.clauses, **kw)
    return f"CAST(strftime('{_SQLITE_PARTS[element.part]}', {value}) AS INTEGER)"


@compiles(utc_part, "postgresql")
def _utc_part_pg(element: utc_part, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    if element.is_timestamp:  # timestamptz: read the wall clock in UTC, not the session zone
        value = f"({value}) AT TIME ZONE 'UTC'"
    return f"CAST(floor(EXTRACT({element.part} FROM {value})) AS INTEGER)"


class guid_text(FunctionElement[str]):  # noqa: N801
    """A GUID as its canonical text (lower case, hyphenated), so rows need no conversion.

    SQLite keeps SQLAlchemy's ``Uuid`` as 32 hex digits; PostgreSQL's ``uuid`` casts to the
    canonical form itself. NULL stays NULL.
    """

    type = String()
    inherit_cache = True
    name = "guid_text"


@compiles(guid_text)
def _guid_text_sqlite(element: guid_text, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    parts = " || '-' || ".join(
        f"substr({value}, {start}, {length})"
        for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    )
    return f"lower({parts})"


@compiles(guid_text, "postgresql")
def _guid_text_pg(element: guid_text, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


class utc_timestamp_text(FunctionElement[str]):  # noqa: N801
    """An aware UTC timestamp as sent. SQLite: its naive UTC text (``2026-01-15 12:00:00.000000``)
    becomes ``2026-01-15T12:00:00.000000Z`` in SQL; PostgreSQL: the ``timestamptz`` itself,
    which arrives aware and is written by orjson."""

    type = String()
    inherit_cache = True
    name = "utc_timestamp_text"


@compiles(utc_timestamp_text)
def _utc_timestamp_text_sqlite(
    element: utc_timestamp_text, compiler: SQLCompiler, **kw: Any
) -> str:
    return f"(replace({compiler.process(element.clauses, **kw)}, ' ', 'T') || 'Z')"


@compiles(utc_timestamp_text, "postgresql")
def _utc_timestamp_text_pg(element: utc_timestamp_text, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


class json_number(FunctionElement[float]):  # noqa: N801
    """A decimal as a value orjson writes without help: PostgreSQL's ``numeric`` arrives as
    ``Decimal``, so it is cast to a double there; SQLite's NUMERIC affinity already yields
    ``int``/``float``, so it is selected as it is (a cast costs per row, measured)."""

    type = Float()
    inherit_cache = True
    name = "json_number"


@compiles(json_number)
def _json_number_sqlite(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(json_number, "postgresql")
def _json_number_pg(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS FLOAT)"
