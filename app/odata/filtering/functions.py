"""Canonical functions in ``$filter``: which ones we run, typed, and how each becomes SQL.

String matching never uses LIKE (see ``filters``): ``startswith`` on a plain column is an
index range, otherwise a substring equality; ``contains`` is a position test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from app.odata.errors import ODataFilterError, ODataFilterUnsupportedError
from app.odata.filtering.numbers import to_integral
from app.odata.filtering.types import Kind, Typed
from app.odata.sql_constructs import binary_collation, text_position, utc_part

_S, _N, _D = Kind.STRING, Kind.NUMBER, Kind.DATETIME
MAX_CODE_POINT = 0x10FFFF
MAX_SUBSTRING_ARGUMENT = 2**31 - 2  # start + 1 still fits a 32-bit integer


def call(name: str, args: list[Typed]) -> Typed:
    key = name.lower()
    if key not in _SIGNATURES:
        msg = f"The function '{name}' is not supported in $filter."
        raise ODataFilterUnsupportedError(msg)
    accepted, result_kind, build = _SIGNATURES[key]
    if len(args) not in {len(kinds) for kinds in accepted}:
        msg_0 = f"Wrong number of arguments for '{name}'."
        raise ODataFilterError(msg_0)
    if any(arg.kind is Kind.NULL for arg in args):
        return Typed(sa.null(), result_kind)
    if not any(_matches(args, kinds) for kinds in accepted):
        wanted = " or ".join(
            "(" + ", ".join(k.value for k in kinds) + ")" for kinds in accepted if kinds
        )
        msg_0 = f"Wrong argument types for '{name}': expected {wanted}."
        raise ODataFilterError(msg_0)
    built = build(args)
    return built if isinstance(built, Typed) else Typed(built, result_kind)


def _matches(args: list[Typed], kinds: tuple[Kind, ...]) -> bool:
    if len(args) != len(kinds):
        return False
    return all(
        arg.kind is kind or (kind is _D and arg.kind is Kind.DATE)
        for arg, kind in zip(args, kinds, strict=True)
    )


def _startswith(args: list[Typed]) -> Any:
    haystack, needle = args
    if haystack.column is not None and needle.is_literal:
        return _prefix_range(haystack, needle.literal)
    length = len(needle.literal) if needle.is_literal else sa.func.length(needle.expr)
    return sa.func.substr(haystack.expr, 1, length) == needle.expr


def _prefix_range(column: Typed, prefix: str) -> Any:
    """``col >= p AND col < succ(p)``: equal to "starts with p" under code-point order."""
    value = binary_collation(column.expr)
    if prefix == "":
        return column.expr.is_not(None)
    lower = value >= binary_collation(sa.literal(prefix, column.expr.type))
    upper_text = successor(prefix)
    if upper_text is None:
        return lower
    return sa.and_(lower, value < binary_collation(sa.literal(upper_text, column.expr.type)))


def successor(prefix: str) -> str | None:
    """The least string above every string that starts with ``prefix`` (None: no bound)."""
    chars = list(prefix)
    while chars:
        code = ord(chars[-1]) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot be stored as UTF-8: skip them
            code = 0xE000
        if code <= MAX_CODE_POINT:
            chars[-1] = chr(code)
            return "".join(chars)
        chars.pop()
    return None


def _endswith(args: list[Typed]) -> Any:
    haystack, needle = args
    length = len(needle.literal) if needle.is_literal else sa.func.length(needle.expr)
    start = sa.func.length(haystack.expr) - length + 1
    return sa.and_(
        sa.func.length(haystack.expr) >= length,
        sa.func.substr(haystack.expr, start) == needle.expr,
    )


def _contains(args: list[Typed]) -> Any:
    return text_position(args[0].expr, args[1].expr) > 0


def _substring(args: list[Typed]) -> Any:
    for arg in args[1:]:
        if not arg.is_literal or not isinstance(arg.literal, int) or arg.literal < 0:
            msg = "substring() needs non-negative whole-number literals for start and length."
            raise ODataFilterError(msg)
        if arg.literal > MAX_SUBSTRING_ARGUMENT:  # no text is that long; SQL ints are bounded
            msg = f"substring() start and length must be at most {MAX_SUBSTRING_ARGUMENT}."
            raise ODataFilterError(msg)
    start = args[1].literal + 1  # OData counts from 0, SQL from 1
    if len(args) == 3:
        return sa.func.substr(args[0].expr, start, args[2].literal)
    return sa.func.substr(args[0].expr, start)


def _integral(mode: str) -> Callable[[list[Typed]], Typed]:
    return lambda args: to_integral(mode, args[0])


def _date_part(part: str) -> Callable[[list[Typed]], Any]:
    def build(args: list[Typed]) -> Any:
        arg = args[0]
        if part in ("hour", "minute", "second") and arg.kind is not Kind.DATETIME:
            msg = f"{part}() needs a date and time value."
            raise ODataFilterError(msg)
        return utc_part(part, arg.expr, is_timestamp=arg.kind is Kind.DATETIME)

    return build


_Signature = tuple[list[tuple[Kind, ...]], Kind, Callable[[list[Typed]], Any]]

_SIGNATURES: dict[str, _Signature] = {
    "contains": ([(_S, _S)], Kind.BOOLEAN, _contains),
    "startswith": ([(_S, _S)], Kind.BOOLEAN, _startswith),
    "endswith": ([(_S, _S)], Kind.BOOLEAN, _endswith),
    "length": ([(_S,)], _N, lambda a: sa.func.length(a[0].expr)),
    "tolower": ([(_S,)], _S, lambda a: sa.func.lower(a[0].expr)),
    "toupper": ([(_S,)], _S, lambda a: sa.func.upper(a[0].expr)),
    "trim": ([(_S,)], _S, lambda a: sa.func.trim(a[0].expr)),
    "concat": ([(_S, _S)], _S, lambda a: a[0].expr.concat(a[1].expr)),
    "indexof": ([(_S, _S)], _N, lambda a: text_position(a[0].expr, a[1].expr) - 1),
    "substring": ([(_S, _N), (_S, _N, _N)], _S, _substring),
    **{mode: ([(_N,)], _N, _integral(mode)) for mode in ("round", "floor", "ceiling")},
    "now": ([()], _D, lambda _a: sa.func.current_timestamp()),
    **{part: ([(_D,)], _N, _date_part(part)) for part in ("year", "month", "day")},
    **{part: ([(_D,)], _N, _date_part(part)) for part in ("hour", "minute", "second")},
}
